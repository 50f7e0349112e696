#!/usr/bin/env python3
"""Page render times of the web app against a running local system (`localstack/up.sh`).

Signs in as a demo user through the development OpenID provider (the production code
path), then requests each page N times, one after another, and prints p50/p99 per page in
milliseconds (the whole HTTP round trip on 127.0.0.1: routing, session lookup, DynamoDB
reads on the emulator, rendering). A benchmark, not a test: the figures depend on the
machine and on what else runs.

    python3 localstack/page_bench.py [--base http://127.0.0.1:8080] [--user alice] [-n 200]
"""

import argparse
import http.cookiejar
import re
import sys
import time
import urllib.request


def percentile(values, p):
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--user", default="alice")
    ap.add_argument("-n", type=int, default=200, help="requests per page")
    args = ap.parse_args()
    base = args.base.rstrip("/")

    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    stranger = urllib.request.build_opener()
    # Sign in: fmn sends us to the provider, whose page is a GET form with one button per
    # user; submitting it comes back to fmn's callback, which sets the session cookie.
    page = browser.open(f"{base}/sign-in", timeout=10)
    page.read()
    done = browser.open(f"{page.url}&user={args.user}", timeout=10)
    done.read()
    if not done.url.endswith(f"/users/{args.user}"):
        sys.exit(f"signing in as {args.user} ended at {done.url}")

    user = f"{base}/users/{args.user}"
    context = browser.open(f"{user}/contexts/email", timeout=10).read().decode()
    pages = [
        ("landing (signed out)", stranger, f"{base}/"),
        ("overview", browser, user),
        ("context (email)", browser, f"{user}/contexts/email"),
    ]
    editor = re.search(r'href="(/users/[^"]+/filters/[^"]+)"', context)
    if editor:
        pages.append(("filter editor + preview", browser, base + editor.group(1)))
    pages += [
        ("history", browser, f"{user}/history"),
        ("tokens and feed", browser, f"{user}/tokens"),
    ]

    print(f"{args.n} requests per page, one at a time, against {base}\n")
    print("| page | p50 ms | p99 ms |")
    print("| --- | ---: | ---: |")
    for name, opener, url in pages:
        for _ in range(3):  # warm caches (and a cold Lambda, were it one)
            opener.open(url, timeout=10).read()
        times = []
        for _ in range(args.n):
            start = time.perf_counter()
            with opener.open(url, timeout=10) as r:
                r.read()
                if r.status != 200:
                    sys.exit(f"{url}: {r.status}")
            times.append((time.perf_counter() - start) * 1000)
        print(f"| {name} | {percentile(times, 50):.1f} | {percentile(times, 99):.1f} |")


if __name__ == "__main__":
    main()
