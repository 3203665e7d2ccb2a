/* tests/unit/http/unit_http.h -- the groups of the unit-http program: each
 * test file runs its own group; test_sigv4.c's main runs them all. */
#ifndef TARN_TESTS_UNIT_HTTP_H
#define TARN_TESTS_UNIT_HTTP_H

int unit_http_chunked_run(void);
int unit_http_gate_run(void);

#endif
