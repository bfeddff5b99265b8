"""A party flooding the HTTP API with as-of queries, from a process of its own as a real client would.

python -m tests.integration.flood URL TOKEN BEGIN END WORKERS: floods until standard input closes,
then prints the count of each status code as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta

import httpx


def flood(
    url: str,
    token: str,
    began: datetime,
    ended: datetime,
    worker: int,
    statuses: Counter[int],
    stop: threading.Event,
) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        step = 0
        while not stop.is_set():
            step += 1
            # A moment never asked before, so no replay already kept answers it.
            moment = began + (ended - began) * ((worker * 7919 + step * 104729) % 1000) / 1000
            moment += timedelta(microseconds=worker * 1000 + step)
            as_of = moment.isoformat().replace("+00:00", "Z")
            response = http.get("/hospitals/H001/midids", params={"as_of": as_of})
            statuses[response.status_code] += 1
            if response.status_code == 429:
                stop.wait(0.01)


def main() -> None:
    url, token, began, ended, workers = sys.argv[1:6]
    statuses: Counter[int] = Counter()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=flood,
            args=(
                url,
                token,
                datetime.fromisoformat(began),
                datetime.fromisoformat(ended),
                i,
                statuses,
                stop,
            ),
        )
        for i in range(int(workers))
    ]
    for thread in threads:
        thread.start()
    print("flooding", flush=True)
    sys.stdin.read()
    stop.set()
    for thread in threads:
        thread.join()
    print(json.dumps(dict(statuses)), flush=True)


if __name__ == "__main__":
    main()
