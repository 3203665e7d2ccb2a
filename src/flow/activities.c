/* flow/activities.c -- activities: Task states done by workers outside
 * tarn, which ask for work with GetActivityTask and answer with
 * SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat and the task's
 * token.
 *
 * Why a dispatcher thread: a worker's GetActivityTask waits up to 60 s and
 * must not hold an HTTP thread, and handing a task out is a durable step
 * (the execution's lock, a commit), which must not run under the locks of
 * whoever scheduled the task or parked the request. So tasks ready for a
 * worker ("pending", offered by the engine after the Task's "token" record
 * committed) and waiting workers ("polls") meet on one thread here, which
 * records the hand-out and calls the poll's done with no lock held.
 *
 * Invariants:
 *   (1) A task is handed out only after its run's record says "worker"
 *       (with an ActivityStarted event) durably: after a crash a task that
 *       was handed out is never handed out again, one that was not is
 *       offered again (flow__activity_resume).
 *   (2) A pending entry is checked when it meets a poll (the run still
 *       waits with that token, and no worker has it); stale entries are
 *       dropped then.
 *   (3) A poll's done is called exactly once unless
 *       flow_activity_poll_cancel returned true: by the dispatcher, with a
 *       task, or NULL at its deadline, when tarn stops or when its worker
 *       is gone (asked before a task is handed to it, which then stays).
 *   (4) A task taken off "pending" goes back to its head when it was not
 *       handed out for a reason other than being stale, so it keeps its
 *       turn.
 *
 * Lock order: flow_acts.mu is never held while an execution's lock is
 * taken or a done is called.
 *
 * Start reading at dispatcher().
 */
#include "flow/internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool flow__name_ok(const char *n);

typedef struct pend {
  char *act;                /* the activity ARN */
  char *exec;               /* the execution ARN */
  char *run;                /* the run's id */
  char *token;
  struct pend *next;
} pend;

struct flow_activity_poll {
  char *act;
  char *worker;             /* workerName, or "" */
  int64_t deadline;         /* wall clock ms */
  flow_activity_done done;
  flow_activity_gone gone;  /* or NULL */
  void *ctx;
  struct flow_activity_poll *next;
};

typedef struct flow_acts {
  pthread_mutex_t mu;       /* guards everything below */
  pthread_cond_t cond;      /* the dispatcher waits: a poll, a task, stop */
  pend *head;               /* FIFO */
  pend *tail;
  flow_activity_poll *polls; /* FIFO of waiting workers */
  bool stopping;
  bool running;
  pthread_t thread;
} flow_acts;

static void pend_free(pend *p)
{
  free(p->act);
  free(p->exec);
  free(p->run);
  free(p->token);
  free(p);
}

static void poll_free(flow_activity_poll *p)
{
  free(p->act);
  free(p->worker);
  free(p);
}

bool flow__activity_arn(const char *res)
{
  return res != NULL && str_starts(res, "arn:aws:states:") && strstr(res, ":activity:") != NULL;
}

/* ---- handing a task to a worker ---- */

/* Records that worker took pending task q (invariant 1): the task's
 * {"taskToken", "input"}, or NULL when q is stale or the commit failed
 * (*retry true: q should stay). */
static json_t *hand_out(flow_system *s, pend *q, const char *worker, bool *retry)
{
  *retry = false;
  exec_rt *x = flow__exec_find(s, q->exec);
  if (x == NULL)
    return NULL;
  json_t *task = NULL;
  pthread_mutex_lock(&x->mu);
  run *r = x->finished ? NULL : flow__run_find(x, q->run);
  const char *phase = r != NULL ? flow__rec_str(r->rec, "phase") : NULL;
  const char *tok = r != NULL ? flow__rec_str(r->rec, "token") : NULL;
  if (r != NULL && phase != NULL && strcmp(phase, "token") == 0 && tok != NULL &&
      strcmp(tok, q->token) == 0 && json_object_get(r->rec, "worker") == NULL) {
    stepper st = {.s = s, .x = x};
    touch *t = flow__touch_of(&st, r);
    json_object_set_new(t->rec, "worker", json_string(worker));
    flow__emit(&st, t, "ActivityStarted", "activityStartedEventDetails",
               json_pack("{s:s}", "workerName", worker));
    /* the heartbeat clock starts with the worker */
    json_t *state = json_object_get(flow__scope_states(x, t->rec), flow__rec_str(t->rec, "state"));
    json_t *hb = json_object_get(state, "HeartbeatSeconds");
    if (hb != NULL)
      flow__deadline_set(&st, t, "hbdue", hb);
    char *input = flow__dump(json_object_get(t->rec, "eff"));
    err e = {0};
    if (flow__stepper_commit(&st, &e) == 0)
      task = json_pack("{s:s, s:s}", "taskToken", q->token, "input", input);
    else
      *retry = true;
    free(input);
    flow__stepper_release(&st);
  }
  pthread_mutex_unlock(&x->mu);
  flow__exec_unref(s, x);
  return task;
}

static void *dispatcher(void *arg)
{
  flow_system *s = arg;
  flow_acts *a = s->acts;
  pthread_mutex_lock(&a->mu);
  while (!a->stopping) {
    /* the first poll with a pending task of its activity */
    flow_activity_poll **pp = &a->polls;
    pend **qq = NULL;
    for (; *pp != NULL; pp = &(*pp)->next) {
      for (qq = &a->head; *qq != NULL; qq = &(*qq)->next)
        if (strcmp((*qq)->act, (*pp)->act) == 0)
          break;
      if (*qq != NULL)
        break;
    }
    if (*pp != NULL) {
      flow_activity_poll *p = *pp;
      pend *q = *qq;
      *pp = p->next;
      *qq = q->next;
      if (a->tail == q) {
        a->tail = NULL;
        for (pend *i = a->head; i != NULL; i = i->next)
          a->tail = i;
      }
      pthread_mutex_unlock(&a->mu);
      if (p->gone != NULL && p->gone(p->ctx)) {
        /* nobody would receive it: the task waits for the next worker */
        p->done(p->ctx, NULL);
        poll_free(p);
        pthread_mutex_lock(&a->mu);
        q->next = a->head;
        a->head = q;
        if (a->tail == NULL)
          a->tail = q;
        continue;
      }
      bool retry;
      json_t *task = hand_out(s, q, p->worker, &retry);
      if (task != NULL || retry) {
        p->done(p->ctx, task); /* a failed commit: this worker gets nothing now */
        json_decref(task);
        poll_free(p);
      }
      pthread_mutex_lock(&a->mu);
      if (task == NULL && !retry) {
        p->next = a->polls; /* the task was stale (2): the worker waits on */
        a->polls = p;
      }
      if (retry) {
        q->next = a->head;
        a->head = q;
        if (a->tail == NULL)
          a->tail = q;
      } else {
        pend_free(q);
      }
      continue;
    }
    /* polls past their deadline get nothing */
    int64_t now = time_now_ms();
    int64_t first = 0;
    flow_activity_poll *expired = NULL;
    for (pp = &a->polls; *pp != NULL;) {
      flow_activity_poll *p = *pp;
      if (p->deadline <= now) {
        *pp = p->next;
        p->next = expired;
        expired = p;
        continue;
      }
      if (first == 0 || p->deadline < first)
        first = p->deadline;
      pp = &p->next;
    }
    if (expired != NULL) {
      pthread_mutex_unlock(&a->mu);
      while (expired != NULL) {
        flow_activity_poll *p = expired;
        expired = p->next;
        p->done(p->ctx, NULL);
        poll_free(p);
      }
      pthread_mutex_lock(&a->mu);
      continue;
    }
    if (first == 0) {
      pthread_cond_wait(&a->cond, &a->mu);
    } else {
      struct timespec ts = {.tv_sec = first / 1000, .tv_nsec = (first % 1000) * 1000000L};
      pthread_cond_timedwait(&a->cond, &a->mu, &ts);
    }
  }
  /* stopping: every waiting worker is told there is nothing (3) */
  flow_activity_poll *left = a->polls;
  a->polls = NULL;
  pthread_mutex_unlock(&a->mu);
  while (left != NULL) {
    flow_activity_poll *p = left;
    left = p->next;
    p->done(p->ctx, NULL);
    poll_free(p);
  }
  return NULL;
}

int flow__acts_open(flow_system *s)
{
  flow_acts *a = xcalloc(1, sizeof *a);
  pthread_mutex_init(&a->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_REALTIME);
  pthread_cond_init(&a->cond, &ca);
  pthread_condattr_destroy(&ca);
  s->acts = a;
  if (pthread_create(&a->thread, NULL, dispatcher, s) != 0)
    return -1;
  a->running = true;
  return 0;
}

void flow__acts_stop(flow_system *s)
{
  flow_acts *a = s->acts;
  if (a == NULL)
    return;
  pthread_mutex_lock(&a->mu);
  a->stopping = true;
  bool running = a->running;
  a->running = false;
  pthread_cond_broadcast(&a->cond);
  pthread_mutex_unlock(&a->mu);
  if (running)
    pthread_join(a->thread, NULL);
}

void flow__acts_close(flow_system *s)
{
  flow_acts *a = s->acts;
  if (a == NULL)
    return;
  flow__acts_stop(s);
  while (a->head != NULL) {
    pend *q = a->head;
    a->head = q->next;
    pend_free(q);
  }
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cond);
  free(a);
  s->acts = NULL;
}

static void pend_push(flow_acts *a, const char *act, const char *exec, const char *run_id,
                      const char *token)
{
  pend *q = xcalloc(1, sizeof *q);
  q->act = xstrdup(act);
  q->exec = xstrdup(exec);
  q->run = xstrdup(run_id);
  q->token = xstrdup(token);
  pthread_mutex_lock(&a->mu);
  if (a->tail != NULL)
    a->tail->next = q;
  else
    a->head = q;
  a->tail = q;
  pthread_cond_signal(&a->cond);
  pthread_mutex_unlock(&a->mu);
}

int flow__activity_offer(flow_system *s, run *r, const char *res, char **error, char **cause)
{
  json_t *act;
  err e = {0};
  int rc = flow__get(s, s->db_activities, res, &act, &e);
  if (rc != 0) {
    *error = xstrdup("States.Runtime");
    *cause = rc == ERR_NOT_FOUND ? xasprintf("the activity '%s' does not exist", res)
                                 : xstrdup(e.msg);
    return -1;
  }
  json_decref(act);
  pend_push(s->acts, res, r->x->arn, r->id, flow__rec_str(r->rec, "token"));
  return 0;
}

void flow__activity_resume(flow_system *s)
{
  for (exec_rt *x = s->execs; x != NULL; x = x->next) {
    for (run *r = x->runs; r != NULL; r = r->next) {
      const char *phase = flow__rec_str(r->rec, "phase");
      const char *tok = flow__rec_str(r->rec, "token");
      if (phase == NULL || strcmp(phase, "token") != 0 || tok == NULL ||
          json_object_get(r->rec, "worker") != NULL)
        continue;
      json_t *state = json_object_get(flow__scope_states(x, r->rec), flow__rec_str(r->rec, "state"));
      const char *res = flow__rec_str(state, "Resource");
      if (flow__activity_arn(res))
        pend_push(s->acts, res, x->arn, r->id, tok);
    }
  }
}

/* ---- polls ---- */

int flow_activity_poll_start(flow_system *s, const char *arn, const char *worker, int wait_ms,
                             flow_activity_done done, flow_activity_gone gone, void *ctx,
                             flow_activity_poll **poll, err *e)
{
  *poll = NULL;
  json_t *act;
  int rc = flow_activity_get(s, arn, &act, e);
  if (rc != 0)
    return rc;
  json_decref(act);
  flow_acts *a = s->acts;
  flow_activity_poll *p = xcalloc(1, sizeof *p);
  p->act = xstrdup(arn);
  p->worker = xstrdup(worker != NULL ? worker : "");
  p->deadline = time_now_ms() + (wait_ms > 0 ? wait_ms : 0);
  p->done = done;
  p->gone = gone;
  p->ctx = ctx;
  pthread_mutex_lock(&a->mu);
  if (a->stopping) {
    pthread_mutex_unlock(&a->mu);
    poll_free(p);
    return err_set(e, ERR_UNAVAILABLE, "tarn is stopping");
  }
  flow_activity_poll **pp = &a->polls;
  while (*pp != NULL)
    pp = &(*pp)->next;
  *pp = p;
  *poll = p;
  pthread_cond_signal(&a->cond);
  pthread_mutex_unlock(&a->mu);
  return 0;
}

bool flow_activity_poll_cancel(flow_system *s, flow_activity_poll *poll)
{
  flow_acts *a = s->acts;
  bool found = false;
  pthread_mutex_lock(&a->mu);
  for (flow_activity_poll **pp = &a->polls; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == poll) {
      *pp = poll->next;
      found = true;
      break;
    }
  }
  pthread_mutex_unlock(&a->mu);
  if (found)
    poll_free(poll);
  return found;
}

/* ---- the activities ---- */

static int activity_arn_check(const char *arn, err *e)
{
  if (!flow__activity_arn(arn) || strlen(arn) > FLOW_MAX_ARN)
    return err_set(e, FLOW_ERR_ARN, "Invalid Arn: 'Resource type not valid in this context: "
                   "%s'", arn ? arn : "");
  return 0;
}

int flow_activity_create(flow_system *s, const char *name, json_t *tags, json_t **out, err *e)
{
  *out = NULL;
  if (!flow__name_ok(name))
    return err_set(e, FLOW_ERR_NAME, "Invalid Name: '%s'", name ? name : "");
  if (json_array_size(tags) > 50)
    return err_set(e, ERR_LIMIT_EXCEEDED, "too many tags: at most 50");
  size_t i;
  json_t *t;
  json_array_foreach(tags, i, t)
    if (!json_is_string(json_object_get(t, "key")))
      return err_set(e, ERR_INVALID, "a tag has no key");
  char *arn = xasprintf("arn:aws:states:%s:%s:activity:%s", FLOW_REGION, FLOW_ACCOUNT_ID, name);
  json_t *rec;
  int rc = flow__get(s, s->db_activities, arn, &rec, e);
  if (rc == ERR_NOT_FOUND) {
    rec = json_pack("{s:s, s:s, s:f, s:o}", "activityArn", arn, "name", name, "creationDate",
                    flow__now_epoch(), "_tags",
                    json_is_array(tags) ? json_incref(tags) : json_array());
    fchange c = {0};
    flow__change_put(&c, s->db_activities, arn, strlen(arn), rec);
    rc = flow__commit(s, &c, e);
    if (rc != 0) {
      json_decref(rec);
      rec = NULL;
    }
  }
  free(arn);
  if (rc != 0)
    return rc;
  *out = json_pack("{s:O, s:O}", "activityArn", json_object_get(rec, "activityArn"),
                   "creationDate", json_object_get(rec, "creationDate"));
  json_decref(rec);
  return 0;
}

int flow_activity_get(flow_system *s, const char *arn, json_t **out, err *e)
{
  *out = NULL;
  int rc = activity_arn_check(arn, e);
  if (rc != 0)
    return rc;
  rc = flow__get(s, s->db_activities, arn, out, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, FLOW_ERR_NO_ACTIVITY, "Activity Does Not Exist: '%s'", arn);
  return rc;
}

int flow_activity_describe(flow_system *s, const char *arn, json_t **out, err *e)
{
  json_t *rec;
  int rc = flow_activity_get(s, arn, &rec, e);
  if (rc == 0) {
    *out = flow__public_copy(rec);
    json_decref(rec);
  }
  return rc;
}

int flow_activity_delete(flow_system *s, const char *arn, err *e)
{
  int rc = activity_arn_check(arn, e);
  if (rc != 0)
    return rc;
  fchange c = {0};
  flow__change_del(&c, s->db_activities, arn, strlen(arn));
  return flow__commit(s, &c, e);
}

int flow_activity_list(flow_system *s, const char *after, size_t max, json_t **items,
                       const char **next, err *e)
{
  static _Thread_local char token[1024];
  *items = json_array();
  *next = NULL;
  json_t *keys, *vals;
  int rc = flow__scan(s, s->db_activities, "arn:", &keys, &vals, e);
  if (rc != 0)
    return rc;
  bool skipping = after != NULL && *after;
  size_t n = json_array_size(vals);
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_array_get(vals, i);
    const char *arn = flow__rec_str(v, "activityArn");
    if (skipping) {
      skipping = strcmp(arn, after) != 0;
      continue;
    }
    json_array_append_new(*items, flow__public_copy(v));
    if (json_array_size(*items) == max && i + 1 < n) {
      snprintf(token, sizeof token, "%s", arn);
      *next = token;
      break;
    }
  }
  json_decref(keys);
  json_decref(vals);
  return 0;
}
