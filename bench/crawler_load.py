"""bench/crawler_load.py -- the crawler figures of bench/crawler_bench.sh:
event-mode latency (PutObject returned -> partition in GetPartitions) and
a full crawl's duration, with boto3 against a running tarn."""
import os
import statistics
import time

import boto3

EP, AK, SK = os.environ["ENDPOINT"], os.environ["AK"], os.environ["SK"]
N = int(os.environ.get("N", "100"))


def client(kind):
    return boto3.client(kind, endpoint_url=EP, region_name="us-east-1",
                        aws_access_key_id=AK, aws_secret_access_key=SK)


s3, glue, sqs = client("s3"), client("glue"), client("sqs")
q = sqs.create_queue(QueueName="crawl-bench")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
s3.create_bucket(Bucket="crawl-bench")
s3.put_bucket_notification_configuration(Bucket="crawl-bench", NotificationConfiguration={
    "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
glue.create_crawler(Name="live", Role="r", DatabaseName="default",
                    Targets={"S3Targets": [{"Path": "s3://crawl-bench/ev/"}]},
                    RecrawlPolicy={"RecrawlBehavior": "CRAWL_EVENT_MODE"})


def nparts(table):
    try:
        n, token = 0, None
        while True:
            kw = {"NextToken": token} if token else {}
            r = glue.get_partitions(DatabaseName="default", TableName=table, **kw)
            n += len(r["Partitions"])
            token = r.get("NextToken")
            if not token:
                return n
    except glue.exceptions.EntityNotFoundException:
        return 0


lat = []
for i in range(N):
    s3.put_object(Bucket="crawl-bench", Key="ev/clicks/dt=%05d/a.csv" % i,
                  Body=b"id,n\n%d,%d\n" % (i, i))
    t0 = time.perf_counter()
    while nparts("clicks") < i + 1:
        time.sleep(0.002)
    lat.append((time.perf_counter() - t0) * 1000)
lat.sort()
print("event mode: upload -> partition visible, %d uploads: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
      % (N, statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1]))

glue.create_crawler(Name="full", Role="r", DatabaseName="default", TablePrefix="full_",
                    Targets={"S3Targets": [{"Path": "s3://crawl-bench/ev/"}]})
t0 = time.perf_counter()
glue.start_crawler(Name="full")
while True:
    c = glue.get_crawler(Name="full")["Crawler"]
    if c["State"] == "READY" and "LastCrawl" in c:
        break
    time.sleep(0.01)
ms = (time.perf_counter() - t0) * 1000
assert c["LastCrawl"]["Status"] == "SUCCEEDED", c
print("full crawl: %d objects in %d partitions -> 1 table: %.0f ms (StartCrawler to READY)"
      % (N, nparts("full_clicks"), ms))
