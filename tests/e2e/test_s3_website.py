"""tests/e2e/test_s3_website.py -- static websites from buckets: the
?website and ?policy configurations with boto3 and the AWS CLI, and the
website endpoint read with plain HTTP (requests), as a browser would, both
at /_tarn/sites/<bucket>/ and with the Host header <bucket>.s3-website.localhost.
"""
import json

import pytest
import requests
from botocore.exceptions import ClientError

from tarnlib import unique_bucket_name


def public_policy(bucket, resource="*"):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::%s/%s" % (bucket, resource)}]})


def code_of(fn):
    with pytest.raises(ClientError) as ei:
        fn()
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


def site_get(tarn, bucket, path="", method="GET", **kw):
    kw.setdefault("allow_redirects", False)
    kw.setdefault("timeout", 60)
    return requests.request(method, "%s/_tarn/sites/%s/%s" % (tarn.endpoint, bucket, path), **kw)


def put(s3, bucket, key, body, ctype="text/html", **kw):
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=ctype, **kw)


@pytest.fixture
def site(s3, bucket):
    """A public bucket with a website: index.html, error.html, a nested
    index and a stylesheet."""
    put(s3, bucket, "index.html", b"<h1>home</h1>")
    put(s3, bucket, "error.html", b"<h1>oops</h1>")
    put(s3, bucket, "docs/index.html", b"<h1>docs</h1>")
    put(s3, bucket, "style.css", b"body{color:red}", ctype="text/css")
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}})
    s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    return bucket


def test_website_configuration_round_trip(s3, bucket):
    assert code_of(lambda: s3.get_bucket_website(Bucket=bucket)) == \
        ("NoSuchWebsiteConfiguration", 404)
    cfg = {"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "err.html"},
           "RoutingRules": [
               {"Condition": {"KeyPrefixEquals": "old/"},
                "Redirect": {"ReplaceKeyPrefixWith": "new/", "HttpRedirectCode": "302"}},
               {"Condition": {"HttpErrorCodeReturnedEquals": "404"},
                "Redirect": {"HostName": "example.com", "Protocol": "https"}}]}
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=cfg)
    got = s3.get_bucket_website(Bucket=bucket)
    assert got["IndexDocument"] == {"Suffix": "index.html"}
    assert got["ErrorDocument"] == {"Key": "err.html"}
    assert got["RoutingRules"] == cfg["RoutingRules"]
    s3.delete_bucket_website(Bucket=bucket)
    assert code_of(lambda: s3.get_bucket_website(Bucket=bucket))[0] == "NoSuchWebsiteConfiguration"
    assert code_of(lambda: s3.get_bucket_website(Bucket=bucket + "-none"))[0] == "NoSuchBucket"


def test_website_configuration_errors(tarn, s3, bucket):
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}})
    bad = [
        {"ErrorDocument": {"Key": "e.html"}},                                  # no index
        {"IndexDocument": {"Suffix": "a/index.html"}},                         # '/' in suffix
        {"IndexDocument": {"Suffix": ""}},
        {"IndexDocument": {"Suffix": "i.html"},
         "RedirectAllRequestsTo": {"HostName": "example.com"}},                # both
        {"RedirectAllRequestsTo": {"HostName": "example.com", "Protocol": "ftp"}},
        {"IndexDocument": {"Suffix": "i.html"}, "RoutingRules": [
            {"Redirect": {"ReplaceKeyWith": "a", "ReplaceKeyPrefixWith": "b"}}]},
        {"IndexDocument": {"Suffix": "i.html"}, "RoutingRules": [
            {"Condition": {"HttpErrorCodeReturnedEquals": "200"}, "Redirect": {"HostName": "x"}}]},
        {"IndexDocument": {"Suffix": "i.html"}, "RoutingRules": [
            {"Redirect": {"HttpRedirectCode": "200"}}]},
    ]
    for cfg in bad:
        assert code_of(lambda: s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=cfg)) == \
            ("InvalidArgument", 400), cfg
    # raw bodies: not XML, and an element S3's schema does not know
    for body in [b"not xml", b"<WebsiteConfiguration><Bogus/></WebsiteConfiguration>"]:
        r = tarn.request("PUT", "/" + bucket, query={"website": ""}, body=body)
        assert r.status_code == 400 and b"<Code>MalformedXML</Code>" in r.content, r.content
    # nothing changed
    assert s3.get_bucket_website(Bucket=bucket)["IndexDocument"] == {"Suffix": "index.html"}


def test_policy_round_trip_and_errors(s3, bucket):
    assert code_of(lambda: s3.get_bucket_policy(Bucket=bucket)) == ("NoSuchBucketPolicy", 404)
    text = public_policy(bucket, "public/*")
    s3.put_bucket_policy(Bucket=bucket, Policy=text)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(text)
    for bad in ["not json", json.dumps({"Statement": []}),
                json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                           "Resource": "arn:aws:s3:::%s/*" % bucket}]}),
                public_policy("some-other-bucket"),
                json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*",
                                           "Action": "s3:GetObject",
                                           "Resource": "arn:aws:s3:::%s/*" % bucket}]})]:
        assert code_of(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=bad)) == \
            ("MalformedPolicy", 400), bad
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(text)
    s3.delete_bucket_policy(Bucket=bucket)
    assert code_of(lambda: s3.get_bucket_policy(Bucket=bucket))[0] == "NoSuchBucketPolicy"


def test_anonymous_get_needs_a_policy(tarn, s3, bucket):
    put(s3, bucket, "public/a.txt", b"hello", ctype="text/plain")
    put(s3, bucket, "private/b.txt", b"secret", ctype="text/plain")
    url = "%s/%s/" % (tarn.endpoint, bucket)
    # no policy: refused
    r = requests.get(url + "public/a.txt", timeout=60)
    assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content
    s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket, "public/*"))
    r = requests.get(url + "public/a.txt", timeout=60)
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["Content-Type"] == "text/plain"
    assert requests.head(url + "public/a.txt", timeout=60).status_code == 200
    # outside the policy's resource, and every other operation: refused
    assert requests.get(url + "private/b.txt", timeout=60).status_code == 403
    assert requests.get(url, timeout=60).status_code == 403                 # ListObjects
    assert requests.put(url + "public/new", data=b"x", timeout=60).status_code == 403
    assert requests.delete(url + "public/a.txt", timeout=60).status_code == 403
    assert requests.get(url + "public/a.txt?tagging", timeout=60).status_code == 403
    assert requests.get(url + "?policy", timeout=60).status_code == 403
    assert s3.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"hello"
    # a Deny wins
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/*" % bucket},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
         "Resource": ["arn:aws:s3:::%s/private/*" % bucket]}]}))
    assert requests.get(url + "public/a.txt", timeout=60).status_code == 200
    assert requests.get(url + "private/b.txt", timeout=60).status_code == 403
    s3.delete_bucket_policy(Bucket=bucket)
    assert requests.get(url + "public/a.txt", timeout=60).status_code == 403


def test_site_index_nested_and_content(tarn, site):
    r = site_get(tarn, site, "")
    assert r.status_code == 200 and r.content == b"<h1>home</h1>"
    assert r.headers["Content-Type"] == "text/html"
    assert site_get(tarn, site, "docs/").content == b"<h1>docs</h1>"
    r = site_get(tarn, site, "docs")
    assert r.status_code == 302 and r.headers["Location"] == "/_tarn/sites/%s/docs/" % site
    r = site_get(tarn, site, "style.css")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/css"
    r = requests.get("%s/_tarn/sites/%s" % (tarn.endpoint, site), allow_redirects=False,
                     timeout=60)
    assert r.status_code == 302 and r.headers["Location"] == "/_tarn/sites/%s/" % site
    # following redirects as a browser does
    r = requests.get("%s/_tarn/sites/%s/docs" % (tarn.endpoint, site), timeout=60)
    assert r.status_code == 200 and r.content == b"<h1>docs</h1>"


def test_site_error_document_and_pages(tarn, s3, site):
    r = site_get(tarn, site, "missing.html")
    assert r.status_code == 404 and r.content == b"<h1>oops</h1>"
    # without an error document: S3's HTML page
    s3.put_bucket_website(Bucket=site, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    r = site_get(tarn, site, "missing.html")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    assert "404 Not Found" in r.text and "Code: NoSuchKey" in r.text and "Key: missing.html" in r.text
    r = site_get(tarn, site, "missing.html", method="HEAD")
    assert r.status_code == 404 and r.content == b""
    # no policy: 403 page, for existing and missing keys alike
    s3.delete_bucket_policy(Bucket=site)
    r = site_get(tarn, site, "index.html")
    assert r.status_code == 403 and "403 Forbidden" in r.text and "Code: AccessDenied" in r.text
    assert b"home" not in r.content
    # a bucket without a website configuration, and one that does not exist
    s3.delete_bucket_website(Bucket=site)
    r = site_get(tarn, site, "")
    assert r.status_code == 404 and "Code: NoSuchWebsiteConfiguration" in r.text
    r = site_get(tarn, site + "-none", "")
    assert r.status_code == 404 and "Code: NoSuchBucket" in r.text
    # only GET and HEAD
    r = requests.post("%s/_tarn/sites/%s/index.html" % (tarn.endpoint, site), data=b"x",
                      timeout=60)
    assert r.status_code == 405


def test_site_conditional_range_head(tarn, site):
    r = site_get(tarn, site, "index.html")
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    assert site_get(tarn, site, "index.html", headers={"If-None-Match": etag}).status_code == 304
    assert site_get(tarn, site, "", headers={"If-Modified-Since": modified}).status_code == 304
    r = site_get(tarn, site, "index.html", headers={"Range": "bytes=4-7"})
    assert r.status_code == 206 and r.content == b"home"
    assert r.headers["Content-Range"] == "bytes 4-7/13"
    r = site_get(tarn, site, "index.html", method="HEAD")
    assert r.status_code == 200 and r.content == b"" and r.headers["Content-Length"] == "13"
    assert r.headers["Content-Type"] == "text/html"


def test_site_redirects(tarn, s3, site):
    put(s3, site, "moved.html", b"", WebsiteRedirectLocation="/docs/")
    put(s3, site, "away.html", b"", WebsiteRedirectLocation="https://example.com/x")
    r = site_get(tarn, site, "moved.html")
    assert r.status_code == 301 and r.headers["Location"] == "/_tarn/sites/%s/docs/" % site
    r = site_get(tarn, site, "away.html")
    assert r.status_code == 301 and r.headers["Location"] == "https://example.com/x"
    assert code_of(lambda: put(s3, site, "bad.html", b"", WebsiteRedirectLocation="nowhere")) == \
        ("InvalidRedirectLocation", 400)

    s3.put_bucket_website(Bucket=site, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"},
        "RoutingRules": [
            {"Condition": {"KeyPrefixEquals": "old/"},
             "Redirect": {"ReplaceKeyPrefixWith": "docs/"}},
            {"Condition": {"KeyPrefixEquals": "gone"},
             "Redirect": {"HostName": "example.org", "Protocol": "https",
                          "ReplaceKeyWith": "new.html", "HttpRedirectCode": "307"}},
            {"Condition": {"HttpErrorCodeReturnedEquals": "404"},
             "Redirect": {"HostName": "fallback.example", "ReplaceKeyPrefixWith": "404/"}}]})
    host = tarn.endpoint.split("//", 1)[1]
    r = site_get(tarn, site, "old/page.html")
    assert r.status_code == 301
    assert r.headers["Location"] == "http://%s/_tarn/sites/%s/docs/page.html" % (host, site)
    r = site_get(tarn, site, "gone/x")
    assert r.status_code == 307 and r.headers["Location"] == "https://example.org/new.html"
    r = site_get(tarn, site, "nope.html")
    assert r.status_code == 301 and r.headers["Location"] == "http://fallback.example/404/nope.html"
    assert site_get(tarn, site, "").content == b"<h1>home</h1>"

    s3.put_bucket_website(Bucket=site, WebsiteConfiguration={
        "RedirectAllRequestsTo": {"HostName": "www.example.com", "Protocol": "https"}})
    r = site_get(tarn, site, "any/path.html")
    assert r.status_code == 301 and r.headers["Location"] == "https://www.example.com/any/path.html"


def test_site_host_header(tarn, site):
    port = tarn.endpoint.rsplit(":", 1)[1]
    for host in ["%s.s3-website.localhost:%s" % (site, port),
                 "%s.s3-website-us-east-1.localhost" % site,
                 "%s.s3-website.us-east-1.localhost:%s" % (site, port)]:
        r = requests.get(tarn.endpoint + "/", headers={"Host": host}, timeout=60,
                         allow_redirects=False)
        assert r.status_code == 200 and r.content == b"<h1>home</h1>", host
        r = requests.get(tarn.endpoint + "/docs", headers={"Host": host}, timeout=60,
                         allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"] == "/docs/"
        r = requests.get(tarn.endpoint + "/nope", headers={"Host": host}, timeout=60)
        assert r.status_code == 404 and r.content == b"<h1>oops</h1>"


def test_awscli_website(tarn, s3):
    bucket = unique_bucket_name("awscli-site")
    tarn.aws_ok("s3", "mb", "s3://" + bucket)
    tarn.aws_ok("s3", "website", "s3://%s/" % bucket, "--index-document", "index.html",
                "--error-document", "error.html")
    got = json.loads(tarn.aws_ok("s3api", "get-bucket-website", "--bucket", bucket).stdout)
    assert got["IndexDocument"] == {"Suffix": "index.html"}
    assert got["ErrorDocument"] == {"Key": "error.html"}
    put(s3, bucket, "index.html", b"cli home")
    tarn.aws_ok("s3api", "put-bucket-policy", "--bucket", bucket, "--policy",
                public_policy(bucket))
    assert site_get(tarn, bucket, "").content == b"cli home"


def test_site_survives_kill9(tarn_factory):
    srv = tarn_factory()
    s3 = srv.client()
    bucket = unique_bucket_name("site-crash")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    put(s3, bucket, "index.html", b"durable")
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}})
    s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    srv.kill9()
    srv.start()
    s3 = srv.client()
    assert s3.get_bucket_website(Bucket=bucket)["IndexDocument"] == {"Suffix": "index.html"}
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(
        public_policy(bucket))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert site_get(srv, bucket, "").content == b"durable"
