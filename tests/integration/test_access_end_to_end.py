"""A fresh machine: `kadaster serve`, then `people add` and `tokens issue`, are enough to sign in and call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.nats.server import free_port
from tests.integration.conftest import csrf_of, wait_until_answering


def kadaster(env: dict[str, str], *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *argv],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def people_add(env: dict[str, str], login: str, name: str, role: str, password: str) -> None:
    """`kadaster people add` of one of H001's people, the password on standard input."""
    added = kadaster(
        env,
        "people",
        "add",
        login,
        "--name",
        name,
        "--party",
        "hospital/H001",
        "--role",
        role,
        "--password-stdin",
        stdin=f"{password}\n",
    )
    assert added.returncode == 0, added.stderr


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """`kadaster serve` with nothing configured but where it keeps its data and its (free) ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KADASTER_")}
    env.update(
        KADASTER_DATA_DIR=str(tmp_path / ".kadaster"),
        KADASTER_EMBEDDED_NATS_PORT=str(free_port()),
        KADASTER_HTTP_PORT=str(free_port()),
        KADASTER_LOG_LEVEL="warning",
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{env['KADASTER_HTTP_PORT']}"
    try:
        wait_until_answering(f"{url}/readyz", process, 90, "kadaster serve", tmp_path / "serve.log")
        yield env, url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_people_add_and_tokens_issue_are_enough_to_sign_in_and_call_the_api(
    served: tuple[dict[str, str], str],
) -> None:
    env, url = served
    # The hospital's local administrator (granted by the FOD) and a requester (granted as H001).
    people_add(env, "anna", "Anna Peeters", "local-admin", "anna-pw")
    people_add(env, "bert", "Bert Claes", "requester", "bert-pw")
    issued = kadaster(
        env, "tokens", "issue", "--party", "hospital/H001", "--label", "H001's system", "--json"
    )
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["token"]
    with httpx.Client(base_url=url, timeout=30) as http:
        # Anonymous: refused; with the token: the hospital's own data and its commands.
        assert http.get("/hospitals/H001/midids").status_code == 401
        bearer = {"Authorization": f"Bearer {token}"}
        sent = http.post("/commands/midid.issue", json={"modality": "MRI"}, headers=bearer)
        assert sent.status_code == 200 and sent.json()["status"] == "accepted", sent.text
        assert http.get("/hospitals/H001/midids", headers=bearer).json()["items"]
        assert http.get("/hospitals/H002/midids", headers=bearer).status_code == 403
        # Bert signs in and requests a MID-ID on the start page.
        form = http.get("/signin")
        signed_in = http.post(
            "/signin", data={"login": "bert", "password": "bert-pw", "csrf": csrf_of(form.text)}
        )
        assert signed_in.status_code == 303, signed_in.text
        home = http.get("/")
        requested = http.post("/midid", data={"modality": "CT", "csrf": csrf_of(home.text)})
        mid_id = re.search(r'id="new-mid-id">([^<]+)<', requested.text)
        assert mid_id, requested.text
    # The console's read commands still answer over NATS, and people list shows who holds what.
    listed = kadaster(env, "midid", "list", "--hospital", "H001", "--json")
    assert listed.returncode == 0 and mid_id[1] in listed.stdout, listed.stderr
    people = json.loads(kadaster(env, "people", "list", "--json").stdout)
    assert {(p["login"], tuple(p["roles"])) for p in people} == {
        ("anna", ("local-admin",)),
        ("bert", ("requester",)),
    }
    # Revoking the token holds at once.
    (entry,) = json.loads(kadaster(env, "tokens", "list", "--json").stdout)
    assert kadaster(env, "tokens", "revoke", entry["id"]).returncode == 0
    assert httpx.get(f"{url}/hospitals/H001/midids", headers=bearer).status_code == 401
