/* sandbox/cgroup.c -- memory, CPU and process limits of an instance, through
 * cgroup v2 or v1, and what they tell at the end (OOM kills, peak memory).
 *
 * Layout: OWN/tarn/<server pid>/<instance id>, where OWN is the cgroup the
 * server runs in (per controller on v1). Working under our own cgroup keeps
 * the instances inside whatever limits the server itself is under, and
 * works when a service manager delegated only that subtree to us. The
 * per-server level keeps two servers on one host (tests, a laptop) apart;
 * a server's start prunes the empty folders of servers that are gone.
 *
 * Invariants:
 *   (1) A controller we cannot use is off ("" folder) with one sentence in
 *       the notes; the instance still runs, with its rlimits.
 *   (2) Limits are written before the instance's init is attached, and the
 *       init is attached before it starts the program.
 *   (3) Swap is off for instances: memsw = limit (v1) or swap.max = 0 (v2),
 *       and swappiness 0 on v1.
 *
 * Start reading at sandbox__cgroups_init().
 */
#include "sandbox/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ctl_names[CG_COUNT] = {"memory", "cpu", "pids"};

static void note(char *notes, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void note(char *notes, size_t n, const char *fmt, ...)
{
  size_t used = strlen(notes);
  if (used + 2 >= n)
    return;
  if (used > 0) {
    notes[used++] = ' ';
    notes[used] = '\0';
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(notes + used, n - used, fmt, ap);
  va_end(ap);
}

static bool file_exists(const char *path)
{
  return access(path, F_OK) == 0;
}

/* Does a space- or comma-separated list hold word? */
static bool has_word(const char *list, const char *word)
{
  size_t wl = strlen(word);
  for (const char *p = list; *p != '\0';) {
    size_t l = strcspn(p, " ,\n");
    if (l == wl && memcmp(p, word, wl) == 0)
      return true;
    p += l;
    p += strspn(p, " ,\n");
  }
  return false;
}

/* The server's cgroup path for a v1 controller, or for v2 (ctl NULL), from
 * /proc/self/cgroup. */
static int own_cgroup(const char *ctl, char *out, size_t n)
{
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (f == NULL)
    return -errno;
  char line[2048];
  int rc = -ENOENT;
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
      continue;
    *c1 = '\0';
    *c2 = '\0';
    bool match = ctl == NULL ? (strcmp(line, "0") == 0 && c1[1] == '\0') : has_word(c1 + 1, ctl);
    if (match) {
      snprintf(out, n, "%s", c2 + 1);
      rc = 0;
      break;
    }
  }
  fclose(f);
  return rc;
}

/* Where the v1 hierarchy of ctl is mounted, and the cgroup path at the
 * mount's root, from /proc/self/mountinfo. */
static int v1_mount(const char *ctl, char *mnt, size_t mn, char *root, size_t rn)
{
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL)
    return -errno;
  char line[4096];
  int rc = -ENOENT;
  while (fgets(line, sizeof line, f) != NULL) {
    /* id parent maj:min root mountpoint options [optional...] - type source superopts */
    char *dash = strstr(line, " - ");
    if (dash == NULL)
      continue;
    char type[64];
    char source[256];
    char superopts[1024];
    if (sscanf(dash + 3, "%63s %255s %1023s", type, source, superopts) != 3)
      continue;
    if (strcmp(type, "cgroup") != 0 || !has_word(superopts, ctl))
      continue;
    char r[SANDBOX_PATH_MAX];
    char m[SANDBOX_PATH_MAX];
    if (sscanf(line, "%*s %*s %*s %1023s %1023s", r, m) != 2)
      continue;
    snprintf(mnt, mn, "%s", m);
    snprintf(root, rn, "%s", r);
    rc = 0;
    break;
  }
  fclose(f);
  return rc;
}

/* mkdir that accepts an existing folder. */
static int make_dir(const char *path)
{
  if (mkdir(path, 0755) == 0 || errno == EEXIST)
    return 0;
  return -errno;
}

/* Removes the empty folders, below tarn, of servers that are gone. */
static void prune_stale(const char *tarn)
{
  DIR *d = opendir(tarn);
  if (d == NULL)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
      continue;
    char server[SANDBOX_PATH_MAX];
    if (snprintf(server, sizeof server, "%s/%s", tarn, de->d_name) >= (int)sizeof server)
      continue;
    DIR *sd = opendir(server);
    if (sd != NULL) {
      struct dirent *ie;
      while ((ie = readdir(sd)) != NULL) {
        if (ie->d_type != DT_DIR || ie->d_name[0] == '.')
          continue;
        char inst[SANDBOX_PATH_MAX + 256];
        if (snprintf(inst, sizeof inst, "%s/%s", server, ie->d_name) < (int)sizeof inst)
          rmdir(inst);
      }
      closedir(sd);
    }
    rmdir(server);
  }
  closedir(d);
}

/* OWN/tarn/<pid> under base, for one controller; "" and a note if we
 * cannot. enable: v2 subtree_control line to write at each level. */
static void make_parent(sandbox__cgroups *cgs, int ctl, const char *base, const char *enable,
                        char *notes, size_t nn)
{
  char tarn[SANDBOX_PATH_MAX];
  char parent[SANDBOX_PATH_MAX];
  int n1 = snprintf(tarn, sizeof tarn, "%s/tarn", base);
  int n2 = snprintf(parent, sizeof parent, "%s/%ld", tarn, (long)getpid());
  if (n1 < 0 || n2 < 0 || (size_t)n2 >= sizeof parent - 80) {
    note(notes, nn, "cgroup path '%s' is too long: %s limits are off.", base, ctl_names[ctl]);
    return;
  }
  int rc = make_dir(tarn);
  if (rc == 0 && enable != NULL) {
    char sc[SANDBOX_PATH_MAX + 32];
    snprintf(sc, sizeof sc, "%s/cgroup.subtree_control", tarn);
    rc = sandbox__write_file(sc, enable);
  }
  if (rc == 0) {
    prune_stale(tarn);
    rc = make_dir(parent);
  }
  if (rc == 0 && enable != NULL) {
    char sc[SANDBOX_PATH_MAX + 32];
    snprintf(sc, sizeof sc, "%s/cgroup.subtree_control", parent);
    rc = sandbox__write_file(sc, enable);
  }
  if (rc != 0) {
    note(notes, nn, "cannot create cgroup '%s' (%s): %s limits are off, rlimits still apply.",
         parent, strerror(-rc), ctl_names[ctl]);
    return;
  }
  snprintf(cgs->tarn[ctl], sizeof cgs->tarn[ctl], "%s", tarn);
  snprintf(cgs->parent[ctl], sizeof cgs->parent[ctl], "%s", parent);
}

static int init_v2(sandbox__cgroups *cgs, char *notes, size_t nn)
{
  char own[SANDBOX_PATH_MAX];
  if (own_cgroup(NULL, own, sizeof own) != 0) {
    note(notes, nn, "cannot find our cgroup v2 in /proc/self/cgroup: memory, cpu and pids limits are off.");
    return 0;
  }
  char base[SANDBOX_PATH_MAX];
  if (snprintf(base, sizeof base, "/sys/fs/cgroup%s", strcmp(own, "/") == 0 ? "" : own) >= (int)sizeof base) {
    note(notes, nn, "cgroup path '%s' is too long: memory, cpu and pids limits are off.", own);
    return 0;
  }

  /* leaves of servers that are gone (see below) */
  DIR *d = opendir(base);
  if (d != NULL) {
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      long pid = 0;
      char leaf[SANDBOX_PATH_MAX + 300];
      if (sscanf(de->d_name, "tarn-server-%ld", &pid) == 1 && pid > 0 && kill((pid_t)pid, 0) != 0 &&
          errno == ESRCH && snprintf(leaf, sizeof leaf, "%s/%s", base, de->d_name) < (int)sizeof leaf)
        rmdir(leaf);
    }
    closedir(d);
  }

  char path[SANDBOX_PATH_MAX + 32];
  char avail[512] = "";
  char active[512] = "";
  snprintf(path, sizeof path, "%s/cgroup.controllers", base);
  sandbox__read_file(path, avail, sizeof avail);
  snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
  sandbox__read_file(path, active, sizeof active);

  /* Controllers must be on in our cgroup's subtree_control. A cgroup other
   * than the root cannot both hold processes and give controllers to its
   * children: move this (still single-threaded) process into a leaf first. */
  char enable[64] = "";
  for (int c = 0; c < CG_COUNT; c++) {
    if (!has_word(avail, ctl_names[c])) {
      note(notes, nn, "cgroup v2 controller '%s' is not delegated to '%s': %s limits are off.",
           ctl_names[c], own, ctl_names[c]);
      continue;
    }
    size_t l = strlen(enable);
    snprintf(enable + l, sizeof enable - l, "%s+%s", l ? " " : "", ctl_names[c]);
  }
  if (enable[0] == '\0')
    return 0;
  bool all_active = true;
  for (int c = 0; c < CG_COUNT; c++)
    if (has_word(avail, ctl_names[c]) && !has_word(active, ctl_names[c]))
      all_active = false;
  if (!all_active) {
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
    int rc = sandbox__write_file(path, enable);
    if (rc == -EBUSY && strcmp(own, "/") != 0) {
      char leaf[SANDBOX_PATH_MAX + 32];
      char procs[SANDBOX_PATH_MAX + 64];
      char pid[32];
      snprintf(leaf, sizeof leaf, "%s/tarn-server-%ld", base, (long)getpid());
      snprintf(procs, sizeof procs, "%s/cgroup.procs", leaf);
      snprintf(pid, sizeof pid, "%ld", (long)getpid());
      rc = make_dir(leaf);
      if (rc == 0)
        rc = sandbox__write_file(procs, pid);
      if (rc == 0)
        rc = sandbox__write_file(path, enable);
    }
    if (rc != 0) {
      note(notes, nn, "cannot enable cgroup v2 controllers '%s' in '%s' (%s): memory, cpu and pids limits are off.",
           enable, base, strerror(-rc));
      return 0;
    }
  }
  for (int c = 0; c < CG_COUNT; c++)
    if (has_word(avail, ctl_names[c]))
      make_parent(cgs, c, base, enable, notes, nn);
  cgs->version = 2;
  return 0;
}

static int init_v1(sandbox__cgroups *cgs, char *notes, size_t nn)
{
  for (int c = 0; c < CG_COUNT; c++) {
    char own[SANDBOX_PATH_MAX];
    char mnt[SANDBOX_PATH_MAX];
    char root[SANDBOX_PATH_MAX];
    if (v1_mount(ctl_names[c], mnt, sizeof mnt, root, sizeof root) != 0 ||
        own_cgroup(ctl_names[c], own, sizeof own) != 0) {
      note(notes, nn, "no cgroup v1 '%s' hierarchy is mounted: %s limits are off.", ctl_names[c], ctl_names[c]);
      continue;
    }
    /* The mount may show a subtree (in a container): strip its root. */
    const char *rel = own;
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(own, root, rl) == 0)
      rel = own + rl;
    if (strcmp(rel, "/") == 0)
      rel = "";
    char base[SANDBOX_PATH_MAX * 2 + 2];
    snprintf(base, sizeof base, "%s%s", mnt, rel);
    make_parent(cgs, c, base, NULL, notes, nn);
    if (cgs->parent[c][0] != '\0')
      cgs->version = 1;
  }
  return 0;
}

int sandbox__cgroups_init(sandbox__cgroups *cgs, char *notes, size_t notes_size, err *e)
{
  memset(cgs, 0, sizeof *cgs);
  char ctls[512] = "";
  if (sandbox__read_file("/sys/fs/cgroup/cgroup.controllers", ctls, sizeof ctls) >= 0 &&
      has_word(ctls, "memory"))
    return init_v2(cgs, notes, notes_size);
  (void)e;
  return init_v1(cgs, notes, notes_size);
}

void sandbox__cgroups_release(sandbox__cgroups *cgs)
{
  for (int c = 0; c < CG_COUNT; c++) {
    if (cgs->parent[c][0] == '\0')
      continue;
    rmdir(cgs->parent[c]);
    rmdir(cgs->tarn[c]); /* fails while other servers use it: fine */
  }
  memset(cgs, 0, sizeof *cgs);
}

uint32_t sandbox__cpu_shares(uint32_t memory_mb)
{
  uint64_t shares = 1024ull * memory_mb / 1769u;
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
  return (uint32_t)shares;
}

static int set(const char *dir, const char *file, const char *value, bool optional, err *e)
{
  char path[SANDBOX_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int rc = sandbox__write_file(path, value);
  if (rc == -ENOENT && optional)
    return 0;
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot write '%s' to '%s': %s", value, path, strerror(-rc));
  return 0;
}

static int limits_v1(const sandbox__cgroup *cg, const sandbox_spec *spec, err *e)
{
  char v[32];
  if (cg->dir[CG_MEMORY][0] != '\0') {
    const char *d = cg->dir[CG_MEMORY];
    snprintf(v, sizeof v, "%" PRIu64, (uint64_t)spec->memory_mb << 20);
    int rc = set(d, "memory.limit_in_bytes", v, false, e);
    if (rc == 0)
      rc = set(d, "memory.memsw.limit_in_bytes", v, true, e);
    if (rc == 0)
      rc = set(d, "memory.swappiness", "0", true, e);
    if (rc != 0)
      return rc;
  }
  if (cg->dir[CG_CPU][0] != '\0') {
    snprintf(v, sizeof v, "%" PRIu32, sandbox__cpu_shares(spec->memory_mb));
    int rc = set(cg->dir[CG_CPU], "cpu.shares", v, false, e);
    if (rc != 0)
      return rc;
  }
  if (cg->dir[CG_PIDS][0] != '\0') {
    snprintf(v, sizeof v, "%" PRIu32, spec->max_procs);
    int rc = set(cg->dir[CG_PIDS], "pids.max", v, false, e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int limits_v2(const sandbox__cgroup *cg, const sandbox_spec *spec, err *e)
{
  char v[32];
  if (cg->dir[CG_MEMORY][0] != '\0') {
    snprintf(v, sizeof v, "%" PRIu64, (uint64_t)spec->memory_mb << 20);
    int rc = set(cg->dir[CG_MEMORY], "memory.max", v, false, e);
    if (rc == 0)
      rc = set(cg->dir[CG_MEMORY], "memory.swap.max", "0", true, e);
    if (rc != 0)
      return rc;
  }
  if (cg->dir[CG_CPU][0] != '\0') {
    /* cpu.weight 1..10000 from shares 2..262144, as the kernel and runc map them */
    uint32_t shares = sandbox__cpu_shares(spec->memory_mb);
    uint32_t weight = 1 + ((shares - 2) * 9999) / 262142;
    snprintf(v, sizeof v, "%" PRIu32, weight);
    int rc = set(cg->dir[CG_CPU], "cpu.weight", v, false, e);
    if (rc != 0)
      return rc;
  }
  if (cg->dir[CG_PIDS][0] != '\0') {
    snprintf(v, sizeof v, "%" PRIu32, spec->max_procs);
    int rc = set(cg->dir[CG_PIDS], "pids.max", v, false, e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int sandbox__cgroup_create(const sandbox__cgroups *cgs, const char *id,
                           const sandbox_spec *spec, sandbox__cgroup *cg, err *e)
{
  memset(cg, 0, sizeof *cg);
  for (int c = 0; c < CG_COUNT; c++) {
    if (cgs->parent[c][0] == '\0')
      continue;
    char dir[SANDBOX_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", cgs->parent[c], id) >= (int)sizeof dir) {
      sandbox__cgroup_remove(cg);
      return err_set(e, ERR_INVALID, "cgroup path of sandbox '%s' is too long", id);
    }
    /* v2: one folder for every controller */
    bool made = false;
    for (int p = 0; p < c; p++)
      if (strcmp(cg->dir[p], dir) == 0)
        made = true;
    if (!made && mkdir(dir, 0755) != 0) {
      int errnum = errno;
      if (errnum == EEXIST && rmdir(dir) == 0 && mkdir(dir, 0755) == 0) {
        /* a leftover of a crashed instance with this id, now gone */
      } else {
        sandbox__cgroup_remove(cg);
        if (errnum == EEXIST)
          return err_set(e, ERR_INVALID, "sandbox '%s' already exists (cgroup '%s' is in use)", id, dir);
        return err_set(e, ERR_INTERNAL, "cannot create cgroup '%s': %s", dir, strerror(errnum));
      }
    }
    snprintf(cg->dir[c], sizeof cg->dir[c], "%s", dir);
  }
  int rc = cgs->version == 2 ? limits_v2(cg, spec, e) : limits_v1(cg, spec, e);
  if (rc != 0)
    sandbox__cgroup_remove(cg);
  return rc;
}

int sandbox__cgroup_limits(const sandbox__cgroups *cgs, const sandbox__cgroup *cg,
                           const sandbox_spec *spec, err *e)
{
  if (cgs->version == 1 && cg->dir[CG_MEMORY][0] != '\0') {
    /* v1 wants memory <= memory+swap at every step: raising, the second
     * goes first (lowering, this write fails and limits_v1's order works) */
    char path[SANDBOX_PATH_MAX + 64];
    char v[32];
    snprintf(path, sizeof path, "%s/memory.memsw.limit_in_bytes", cg->dir[CG_MEMORY]);
    snprintf(v, sizeof v, "%" PRIu64, (uint64_t)spec->memory_mb << 20);
    (void)sandbox__write_file(path, v);
  }
  return cgs->version == 2 ? limits_v2(cg, spec, e) : cgs->version == 1 ? limits_v1(cg, spec, e) : 0;
}

int sandbox__cgroup_join_fds(const sandbox__cgroups *cgs, const sandbox__cgroup *cg, int *mode,
                             int fds[CG_COUNT], size_t *n, err *e)
{
  *n = 0;
  *mode = SANDBOX_CG_NONE;
  for (int c = 0; c < CG_COUNT; c++) {
    if (cg->dir[c][0] == '\0')
      continue;
    bool done = false;
    for (int p = 0; p < c; p++)
      if (strcmp(cg->dir[p], cg->dir[c]) == 0)
        done = true;
    if (done)
      continue;
    char path[SANDBOX_PATH_MAX + 16];
    int fd;
    if (cgs->version == 2) {
      snprintf(path, sizeof path, "%s", cg->dir[c]);
      fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
      snprintf(path, sizeof path, "%s/tasks", cg->dir[c]);
      fd = open(path, O_WRONLY | O_CLOEXEC);
    }
    if (fd < 0) {
      int errnum = errno;
      for (size_t i = 0; i < *n; i++)
        close(fds[i]);
      *n = 0;
      return err_set(e, ERR_INTERNAL, "cannot open cgroup '%s': %s", path, strerror(errnum));
    }
    fds[(*n)++] = fd;
  }
  if (*n > 0)
    *mode = cgs->version == 2 ? SANDBOX_CG_V2_CLONE : SANDBOX_CG_V1_TASKS;
  return 0;
}

int sandbox__cgroup_attach(const sandbox__cgroup *cg, pid_t pid, err *e)
{
  char v[32];
  snprintf(v, sizeof v, "%ld", (long)pid);
  for (int c = 0; c < CG_COUNT; c++) {
    if (cg->dir[c][0] == '\0')
      continue;
    bool done = false;
    for (int p = 0; p < c; p++)
      if (strcmp(cg->dir[p], cg->dir[c]) == 0)
        done = true;
    int rc = done ? 0 : set(cg->dir[c], "cgroup.procs", v, false, e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* The value of "key N" in a flat keyed file (memory.events, oom_control). */
static uint64_t keyed(const char *dir, const char *file, const char *key)
{
  char path[SANDBOX_PATH_MAX + 64];
  char buf[1024];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (sandbox__read_file(path, buf, sizeof buf) < 0)
    return 0;
  size_t kl = strlen(key);
  for (char *p = buf; *p != '\0';) {
    if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
      return strtoull(p + kl + 1, NULL, 10);
    char *nl = strchr(p, '\n');
    if (nl == NULL)
      break;
    p = nl + 1;
  }
  return 0;
}

static bool is_v2_dir(const sandbox__cgroup *cg)
{
  char path[SANDBOX_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/memory.events", cg->dir[CG_MEMORY]);
  return file_exists(path);
}

bool sandbox__cgroup_oom(const sandbox__cgroup *cg)
{
  if (cg->dir[CG_MEMORY][0] == '\0')
    return false;
  if (is_v2_dir(cg))
    return keyed(cg->dir[CG_MEMORY], "memory.events", "oom_kill") > 0;
  return keyed(cg->dir[CG_MEMORY], "memory.oom_control", "oom_kill") > 0;
}

uint64_t sandbox__cgroup_peak(const sandbox__cgroup *cg)
{
  if (cg->dir[CG_MEMORY][0] == '\0')
    return 0;
  char path[SANDBOX_PATH_MAX + 64];
  char buf[64];
  snprintf(path, sizeof path, "%s/%s", cg->dir[CG_MEMORY],
           is_v2_dir(cg) ? "memory.peak" : "memory.max_usage_in_bytes");
  if (sandbox__read_file(path, buf, sizeof buf) <= 0)
    return 0;
  return strtoull(buf, NULL, 10);
}

void sandbox__cgroup_remove(sandbox__cgroup *cg)
{
  for (int c = 0; c < CG_COUNT; c++) {
    if (cg->dir[c][0] == '\0')
      continue;
    bool done = false;
    for (int p = 0; p < c; p++)
      if (strcmp(cg->dir[p], cg->dir[c]) == 0)
        done = true;
    /* The last task leaves its cgroup a moment after it is reaped. */
    for (int i = 0; !done && i < 200; i++) {
      if (rmdir(cg->dir[c]) == 0 || errno == ENOENT)
        break;
      if (errno != EBUSY)
        break;
      usleep(1000);
    }
  }
  memset(cg, 0, sizeof *cg);
}
