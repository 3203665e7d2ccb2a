/* tests/unit/aws/unit_aws.h -- the groups of the unit-aws program: each
 * test file runs its own group; test_sigv4.c's main runs them all. */
#ifndef TARN_TESTS_UNIT_AWS_H
#define TARN_TESTS_UNIT_AWS_H

int unit_aws_chunked_run(void);
int unit_aws_eventstream_run(void);
int unit_aws_json_load_run(void);

#endif
