/* api/s3.h -- the S3 REST-XML endpoint: translates S3 requests into calls
 * on the object store (store/store.h) and the answers back into S3's wire
 * format (XML bodies, x-amz-* headers, S3 error documents).
 *
 * The service plugs into the HTTP edge (http/http.h) under the SigV4 scope
 * name "s3"; the server also hands it every unsigned request that is not for
 * /_tarn/. Operations, addressing and limits are described at the top of
 * api/s3.c.
 */
#ifndef TARN_API_S3_H
#define TARN_API_S3_H

#include "http/http.h"
#include "store/store.h"

/* Creates the S3 service over st. The store is borrowed: it must outlive
 * the service, and the caller closes it after freeing the service. The
 * result is ready to be listed in http_config.services. Never fails
 * (out-of-memory aborts). */
http_service *s3_service_new(store *st);

/* Bucket notifications (?notification) go to the events part ev
 * (borrowed; it must outlive the service). Without one they answer
 * NotImplemented. */
struct events_system;
void s3_service_set_events(http_service *svc, struct events_system *ev);

/* Requests whose path starts with /v20180820/ (S3 Control: Batch
 * Operations jobs, signed for "s3" too) go to control (borrowed). */
void s3_service_set_control(http_service *svc, http_service *control);

/* Browser POST uploads sign their policy with an access key's secret:
 * lookup finds it (the server's own keyring, as http_config's), and
 * admin_access_key is the root key (as http_config's). Without a lookup,
 * signed POST forms are refused. */
void s3_service_set_keys(http_service *svc, sigv4_secret_fn lookup, void *ctx,
                         const char *admin_access_key);

/* Frees a service made by s3_service_new, once the server that used it has
 * stopped. Accepts NULL; returns NULL. */
http_service *s3_service_free(http_service *svc);

#endif
