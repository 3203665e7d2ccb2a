/* catalog/crawler.h -- Glue's crawlers over the object store: a crawler
 * lists its S3 targets, groups the objects into tables, infers each
 * table's format, schema and partitions, and writes them into the catalog.
 *
 * Documents. A crawler is kept and returned as Glue's Crawler document:
 *   {Name, Role, Targets{S3Targets[{Path, Exclusions[]}]}, DatabaseName,
 *    Description, TablePrefix, SchemaChangePolicy{UpdateBehavior,
 *    DeleteBehavior}, RecrawlPolicy{RecrawlBehavior}, Configuration,
 *    Classifiers[], State READY|RUNNING|STOPPING, CreationTime,
 *    LastUpdated, Version, CrawlElapsedTime,
 *    LastCrawl{Status SUCCEEDED|FAILED|CANCELLED, ErrorMessage, StartTime,
 *              LogGroup, LogStream, MessagePrefix}}
 * stored in the catalog's LMDB (catalog_crawler_*): a definition and every
 * change of state survive kill -9; a crawler RUNNING or STOPPING when the
 * process died comes back READY with LastCrawl FAILED.
 *
 * A crawl runs on a thread of its own (StartCrawler returns at once);
 * StopCrawler asks it to stop between objects (LastCrawl CANCELLED).
 *
 * Errors (base/err.h): ERR_ENTITY_NOT_FOUND, ERR_ALREADY_EXISTS,
 * ERR_INVALID_INPUT, ERR_CRAWLER_RUNNING, ERR_CRAWLER_NOT_RUNNING,
 * ERR_CRAWLER_STOPPING, and the catalog's storage errors.
 *
 * Threads: every function is safe to call from many threads.
 */
#ifndef TARN_CATALOG_CRAWLER_H
#define TARN_CATALOG_CRAWLER_H

#include "catalog/catalog.h"

typedef struct store store;
typedef struct crawlers crawlers;

#define CRAWLER_MAX_TARGETS 100     /* S3Targets of one crawler */
#define CRAWLER_MAX_EXCLUSIONS 100  /* Exclusions of one target */
#define CRAWLER_MAX_OBJECTS 1000000 /* objects one crawl looks at */
#define CRAWLER_SAMPLE (1u << 20)   /* bytes read from each object to infer its schema */

typedef struct crawler_options {
  catalog *cat;           /* where crawls write tables (and crawlers are kept) */
  store *st;              /* what they list and read */
  /* Decides whether a crawl, acting as its crawler's Role (a role name is
     taken as arn:aws:iam::ACCOUNT:role/NAME), may do action on resource
     (an ARN): s3:ListBucket on a target's bucket before listing it,
     s3:GetObject on each object before reading it, glue:CreateTable,
     glue:UpdateTable and glue:BatchCreatePartition on a table
     (arn:aws:glue:REGION:ACCOUNT:table/DB/NAME) before writing it,
     glue:UpdateTable or glue:DeleteTable before deprecating or deleting
     one. A refused target, object or table is left out (logged), the rest
     is crawled and written; the crawl then ends FAILED with the first
     refusal in LastCrawl.ErrorMessage, and when something could not be
     read, tables the crawler made before are neither deprecated nor
     deleted. In event mode a refusal leaves the object out. NULL:
     everything is allowed. */
  int (*authorize)(void *ctx, const char *role_arn, const char *action, const char *resource,
                   err *e);
  void *authorize_ctx;
  /* This node's identity, stable across its restarts (host and data
     directory), when the catalog is shared by several nodes: a crawl is
     claimed by one node (StartCrawler on two nodes at once: one gets
     CrawlerRunningException) and only its own node recovers it after a
     crash. NULL: one node. */
  const char *node;
} crawler_options;

/* Recovers crawlers left RUNNING by a crash (READY, LastCrawl FAILED);
 * on a shared catalog only those this node ran. */
int crawlers_open(const crawler_options *o, crawlers **out, err *e);
/* Stops the crawls in flight and waits for them. Accepts NULL. */
crawlers *crawlers_close(crawlers *cr);

/* in: CreateCrawler's request members. */
int crawler_create(crawlers *cr, const json_t *in, err *e);
/* UpdateCrawler: the members given replace the definition's. */
int crawler_update(crawlers *cr, const json_t *in, err *e);
int crawler_get(crawlers *cr, const char *name, json_t **out, err *e);
int crawler_delete(crawlers *cr, const char *name, err *e);
/* One page of crawler documents (names_only: an array of names). */
int crawler_list(crawlers *cr, const char *token, size_t max, bool names_only, json_t **out,
                 char **next, err *e);
int crawler_start(crawlers *cr, const char *name, err *e);
int crawler_stop(crawlers *cr, const char *name, err *e);
/* Glue's CrawlerMetrics of one crawler. */
int crawler_metrics(crawlers *cr, const char *name, json_t **out, err *e);

/* Event mode (RecrawlPolicy CRAWL_EVENT_MODE): told one change of the
 * store's feed (events/events.h's observer; ctx is the crawlers), it
 * queues the change and returns at once. A thread of the crawlers takes
 * each created object under an event-mode crawler's target into the
 * catalog as a crawl would, without listing: its table is created or its
 * schema widened, its partition added. Removed objects change nothing
 * (the next full crawl applies the DeleteBehavior). At most
 * CRAWLER_MAX_PENDING changes wait; more are dropped (a full crawl
 * catches up). */
#define CRAWLER_MAX_PENDING 100000
struct store_change;
void crawlers_observe(void *ctx, const struct store_change *ch);

#endif
