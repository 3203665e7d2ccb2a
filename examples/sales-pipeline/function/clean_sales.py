"""clean_sales.py -- the function of the sales pipeline: an upload under raw/
triggers it (an S3 event notification), it writes a cleaned copy under
clean/ and tells a queue what it did.

Cleaning: headers named any of the usual ways ("Cust ID", "custid", ...),
spaces and case in names, dates as 2024-01-05 or 05/01/2024, prices with
"$" or a decimal comma; rows without a customer, with a count that is not
a number or with missing fields are dropped (and counted).

It is plain Lambda code: the same file runs on AWS Lambda unchanged. On
tarn, boto3 reaches tarn's S3 and SQS through AWS_ENDPOINT_URL, which tarn
sets for every function.
"""
import csv
import io
import json
import os
import urllib.parse

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL")
s3 = boto3.client("s3", endpoint_url=ENDPOINT)
sqs = boto3.client("sqs", endpoint_url=ENDPOINT)

COLUMNS = ["order_id", "custid", "year", "month", "gram", "count", "price"]
ALIASES = {
    "order id": "order_id", "order_id": "order_id", "id": "order_id",
    "cust id": "custid", "custid": "custid", "customer": "custid", "customer id": "custid",
    "order date": "date", "date": "date",
    "gram": "gram", "product": "gram",
    "count": "count", "qty": "count", "quantity": "count",
    "price": "price",
}


def parse_date(text):
    """(year, month) of '2024-01-05' or '05/01/2024'."""
    text = text.strip()
    if "-" in text:
        y, m, _ = text.split("-")
    else:
        _, m, y = text.split("/")
    return int(y), int(m)


def parse_price(text):
    text = text.strip().lstrip("$").strip()
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    return round(float(text), 2)


def clean(raw):
    """Rows of COLUMNS, and how many input rows were dropped."""
    reader = csv.reader(io.StringIO(raw))
    header = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in next(reader)]
    rows, dropped = [], 0
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        rec = dict(zip(header, fields))
        try:
            custid = rec["custid"].strip()
            if len(fields) != len(header) or not custid.isdigit():
                raise ValueError("no customer")
            year, month = parse_date(rec["date"])
            rows.append([rec["order_id"].strip(), custid, year, month,
                         rec["gram"].strip().lower(), int(rec["count"].strip()),
                         parse_price(rec["price"])])
        except (KeyError, ValueError):
            dropped += 1
    return rows, dropped


def handler(event, context):
    queue_url = sqs.get_queue_url(QueueName=os.environ["QUEUE_NAME"])["QueueUrl"]
    done = []
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8-sig")
        rows, dropped = clean(raw)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        target = "clean/" + key.split("/", 1)[1]
        s3.put_object(Bucket=bucket, Key=target, Body=out.getvalue().encode(),
                      ContentType="text/csv")
        summary = {"source": key, "cleaned": target, "rows": len(rows), "dropped": dropped,
                   "revenue": round(sum(r[5] * r[6] for r in rows), 2)}
        print("cleaned s3://%s/%s -> %s: %d rows kept, %d dropped"
              % (bucket, key, target, len(rows), dropped))
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(summary))
        done.append(summary)
    return done
