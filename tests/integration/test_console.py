"""The web console in a real browser (Debian's chromium, headless, driven by Playwright)
against the real ``switchboard serve`` with the core lab: an operator sees a link's root
alarm arrive without reloading, acknowledges it with a note, and the REST API shows who
and why; a viewer gets no acknowledge control and a 403 from the REST call.

Screenshots of the alarm page and the topology map are saved under
``$SWITCHBOARD_ARTEFACTS/console`` (default ``tests/artefacts/console``, ignored by git);
the test prints where."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.pytest_plugin import LabHandle

pytestmark = pytest.mark.lab

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ALARMS = "/tmf-api/alarmManagement/v4/alarm"
WAIT_MS = 120_000  # generous: a wait, never a timed assertion
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "northbound.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, input=stdin,
                          env=os.environ.copy())


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def artefacts_dir() -> Path:
    base = os.environ.get("SWITCHBOARD_ARTEFACTS")
    where = (Path(base) if base else ROOT / "tests" / "artefacts") / "console"
    where.mkdir(parents=True, exist_ok=True)
    return where


@dataclass
class Server:
    """``switchboard serve`` in a subprocess: its URL, PID and log file."""

    url: str
    pid: int
    log: Path

    def request(self, method: str, path: str, *, token: str | None = None,
                body: Any = None) -> tuple[int, Any]:
        """(status, JSON body) of a REST call, with a bearer token when given."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def login(self, name: str, password: str) -> str:
        status, body = self.request("POST", "/api/auth/login",
                                    body={"name": name, "password": password})
        assert status == 200, body
        return str(body["token"])


def wait_for(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s} s; last seen {last!r}")


@pytest.fixture(scope="module")
def discovered(core_lab: LabHandle) -> LabHandle:
    res = cli("discover", "--lab", core_lab.name, "--json")
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["found"]) == len(core_lab.managed())
    return core_lab


@pytest.fixture(scope="module")
def server(discovered: LabHandle) -> Iterator[Server]:
    """The real server, with its trap receiver on the lab's trap target (it accepts the
    lab's community: the lab registered its credential profile in SWITCHBOARD_HOME)."""
    lab = discovered
    port = free_tcp_port()
    log = artefacts_dir() / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "northbound.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--traps-host", lab.trap_host,
             "--traps-port", str(lab.trap_port)],
            stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    pid = proc.pid
    try:
        srv = Server(f"http://127.0.0.1:{port}", pid, log)

        def up() -> bool:
            assert proc.poll() is None, f"serve exited: {log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{srv.url}/console/", timeout=5) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_for("the server answers", up, 120)
        yield srv
    finally:
        if proc.poll() is None:
            os.kill(pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.fixture(scope="module")
def users(server: Server) -> dict[str, tuple[str, str]]:
    """An operator and a viewer, made with the CLI: role -> (name, password)."""
    made = {}
    for role in ("operator", "viewer"):
        name, password = f"console-{role}", secrets.token_urlsafe(16)
        res = cli("users", "add", name, "--role", role, "--password-stdin",
                  stdin=password + "\n")
        assert res.returncode == 0, res.stderr
        made[role] = (name, password)
    return made


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright's driver (one per module: its sync API does not nest)."""
    api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/install.sh)")
    with api.sync_playwright() as pw:
        yield pw


@contextmanager
def browser_page(playwright: Any, name: str) -> Iterator[Any]:
    """A page in a fresh headless chromium of its own (its own user data directory, so
    its own cookies): Debian's chromium, no browser downloaded."""
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"console-{name}-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 900})
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
        finally:
            context.close()
    assert errors == [], f"script errors in the console: {errors}"


def log_in(page: Any, server: Server, name: str, password: str) -> None:
    page.goto(f"{server.url}/")  # redirected to /console/, which asks to log in
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#alarm-list")
    assert page.text_content("#who") is not None
    assert name in (page.text_content("#who") or "")


ROOT_LINK = ('.alarm[data-top="true"][data-root="true"][data-object-type="link"]'
             '[data-object*="r1:eth1"]:not([data-state="cleared"])')


def test_operator_acknowledges_a_live_root_alarm_and_a_viewer_cannot(
        discovered: LabHandle, server: Server, users: dict[str, tuple[str, str]],
        playwright: Any) -> None:
    lab = discovered
    shots = artefacts_dir()
    print(f"\nconsole test artefacts in {shots}")
    op_name, op_password = users["operator"]
    viewer_name, viewer_password = users["viewer"]
    op_token = server.login(op_name, op_password)
    note = f"fibre cut, ticket {secrets.randbelow(10**6)}"

    # a customer whose name is markup: the console must show it as text
    evil = f"<script>window.__xss=1</script> <img src=x onerror=window.__xss=2> {note[-6:]}"
    status, _ = server.request("POST", "/tmf-api/customerManagement/v4/customer",
                               token=op_token, body={"name": evil})
    assert status == 201

    alarm_id = ""
    with browser_page(playwright, "operator") as page:
        log_in(page, server, op_name, op_password)
        page.goto(f"{server.url}/console/#/customers")
        cell = page.locator("#customer-list a", has_text="<script>window.__xss=1</script>")
        cell.wait_for()
        assert cell.text_content() == evil
        assert page.evaluate("window.__xss") is None
        assert page.locator("main script, main img").count() == 0

        page.goto(f"{server.url}/console/#/alarms")
        page.wait_for_selector("#alarm-list")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        lab.lab.set_link("r1", "eth1", up=False)  # r1:eth1 -- r2:eth1
        try:
            # the root alarm arrives over the event stream: no reload
            row = page.locator(ROOT_LINK).first
            row.wait_for()
            assert page.evaluate("window.__sameDocument") is True
            alarm_id = row.get_attribute("data-alarm-id") or ""
            assert alarm_id.isdigit()
            mine = f"#alarm-{alarm_id}"
            # its symptoms are folded under it: both ends' interface alarms
            page.wait_for_selector(f"{mine} details.symptoms .alarm[data-object='r1:eth1']",
                                   state="attached")
            page.wait_for_selector(f"{mine} details.symptoms .alarm[data-object='r2:eth1']",
                                   state="attached")
            assert page.locator(f"{mine}[data-ack-state='unacknowledged']").count() == 1

            page.click(f"{mine} > .line [data-action='ack']")
            page.fill(f"{mine} > form.note input[name='note']", note)
            page.click(f"{mine} > form.note [data-action='ack-submit']")
            page.wait_for_selector(f"{mine}[data-ack-state='acknowledged']")
            ack_info = page.locator(f"{mine} > [data-role='ack-info']")
            ack_info.wait_for()
            assert op_name in (ack_info.text_content() or "")
            assert note in (ack_info.text_content() or "")
            # and comments on it
            comment = f"splicing crew on site ({note[-6:]})"
            page.click(f"{mine} > .line [data-action='comment']")
            page.fill(f"{mine} > form.note input[name='note']", comment)
            page.click(f"{mine} > form.note [data-action='comment-submit']")
            page.locator(f"{mine} > ul.comments li", has_text=comment).wait_for()
            page.locator(f"{mine} details.symptoms > summary").first.click()
            page.screenshot(path=str(shots / "alarms-operator.png"), full_page=True)

            # the REST API tells the same: who acknowledged, and why
            status, doc = server.request("GET", f"{ALARMS}/{alarm_id}", token=op_token)
            assert status == 200
            assert doc["ackState"] == "acknowledged"
            assert doc["ackUserId"] == op_name
            assert doc["x_ackNote"] == note
            assert doc["isRootCause"] is True
            assert [(c["userId"], c["comment"]) for c in doc["comment"]] == [(op_name, comment)]

            page.goto(f"{server.url}/console/#/topology")
            page.wait_for_selector("#topology-map .node[data-device='r1']")
            page.wait_for_selector("#topology-map line.link:not([data-severity='ok'])")
            page.screenshot(path=str(shots / "topology.png"), full_page=True)

            # a viewer sees the alarm and who acknowledged it, and nothing to act with
            with browser_page(playwright, "viewer") as viewer:
                log_in(viewer, server, viewer_name, viewer_password)
                viewer.wait_for_selector(f"#alarm-{alarm_id}[data-ack-state='acknowledged']")
                viewer.locator(f"#alarm-{alarm_id} details.symptoms > summary").first.click()
                viewer.wait_for_selector(f"#alarm-{alarm_id} details.symptoms .alarm")
                assert viewer.locator("[data-action='ack']").count() == 0
                assert viewer.locator("[data-action]").count() == 0
                assert viewer.locator("form.note").count() == 0
                viewer.screenshot(path=str(shots / "alarms-viewer.png"), full_page=True)

            viewer_token = server.login(viewer_name, viewer_password)
            status, problem = server.request(
                "PATCH", f"{ALARMS}/{alarm_id}", token=viewer_token,
                body={"ackState": "unacknowledged"})
            assert status == 403, problem
            assert "operator" in problem["detail"]
            status, doc = server.request("GET", f"{ALARMS}/{alarm_id}", token=viewer_token)
            assert status == 200 and doc["ackUserId"] == op_name  # unchanged
        finally:
            lab.lab.set_link("r1", "eth1", up=True)

        # the link comes back: the root alarm leaves the active list, still no reload
        page.goto(f"{server.url}/console/#/alarms")
        page.wait_for_selector(f"#alarm-{alarm_id}", state="detached")
        status, doc = server.request("GET", f"{ALARMS}/{alarm_id}", token=op_token)
        assert status == 200 and doc["state"] == "cleared", doc


def test_the_topology_map_zooms_pans_and_finds_a_device(
        discovered: LabHandle, server: Server, users: dict[str, tuple[str, str]],
        playwright: Any) -> None:
    """On the discovered lab's map: the zoom buttons and the wheel change the scale about
    the right point, a drag pans, the search centres a device, and a redraw (an alarm
    arriving) keeps the view."""
    viewer_name, viewer_password = users["viewer"]
    with browser_page(playwright, "map") as page:
        log_in(page, server, viewer_name, viewer_password)
        page.goto(f"{server.url}/console/#/topology")
        node = page.locator("#topology-map .node[data-device='r1']")
        node.wait_for()
        assert page.locator("#topology-map .node").count() == len(discovered.managed())

        def box() -> dict[str, float]:
            found = node.bounding_box()
            assert found is not None
            return dict(found)

        start = box()
        page.click("#map-zoom-in")
        page.click("#map-zoom-in")
        assert page.get_attribute("#topology-map", "data-zoom") == "1.563"
        zoomed = box()
        assert zoomed["width"] > start["width"] * 1.4  # the node is drawn bigger

        # a drag on the background moves the map by as much as the pointer moved
        frame = page.locator("#topology-map").bounding_box()
        assert frame is not None
        x0, y0 = frame["x"] + 8, frame["y"] + 8  # a corner: background, not a node
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + 120, y0 + 60, steps=6)
        page.mouse.up()
        moved = box()
        assert abs(moved["x"] - zoomed["x"] - 120) < 3
        assert abs(moved["y"] - zoomed["y"] - 60) < 3

        # the wheel zooms out about the pointer: the point under it stays put, and the
        # node (wherever it is now, on screen or not) closes in on it by the factor
        px, py = frame["x"] + frame["width"] / 2, frame["y"] + 200
        page.mouse.move(px, py)
        page.mouse.wheel(0, 200)
        page.wait_for_selector("#topology-map[data-zoom='1.302']")
        assert page.evaluate("window.scrollY") == 0  # the page itself did not scroll
        after = box()
        for axis, at in (("x", px), ("y", py)):
            before_c = moved[axis] + moved["width" if axis == "x" else "height"] / 2
            after_c = after[axis] + after["width" if axis == "x" else "height"] / 2
            assert abs(after_c - (at + (before_c - at) / 1.2)) < 3, (axis, before_c, after_c)

        # the search centres the device and marks it
        page.fill("#map-find", "r3")
        page.press("#map-find", "Enter")
        page.dispatch_event("#map-find", "change")
        r3 = page.locator("#topology-map .node.found[data-device='r3']")
        r3.wait_for()
        r3_box = r3.locator("circle").bounding_box()  # its centre is the device's place
        assert r3_box is not None
        mid_x = frame["x"] + frame["width"] / 2
        mid_y = frame["y"] + frame["height"] / 2
        assert abs(r3_box["x"] + r3_box["width"] / 2 - mid_x) < 3
        assert abs(r3_box["y"] + r3_box["height"] / 2 - mid_y) < 3
        # a click on a node still opens its page; coming back keeps the view
        zoom = page.get_attribute("#topology-map", "data-zoom")
        r3.click()
        page.wait_for_url("**#/device/r3")
        page.go_back()
        page.wait_for_selector("#topology-map .node.found[data-device='r3']")
        assert page.get_attribute("#topology-map", "data-zoom") == zoom
        page.click("#map-fit")
        assert page.get_attribute("#topology-map", "data-zoom") == "1"
        page.screenshot(path=str(artefacts_dir() / "topology-zoomed-fit.png"))


ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
TERMINAL = ("completed", "failed", "partial", "cancelled")


def placed(server: Server, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """Place an order through the server's REST API and wait for its processing."""
    status, order = server.request("POST", ORDERS, token=token, body=body)
    assert status == 201, order
    return dict(wait_for(
        f"order {order['id']} processed",
        lambda: (doc if (doc := server.request("GET", f"{ORDERS}/{order['id']}",
                                               token=token)[1])["state"] in TERMINAL
                 else None), 300))


def test_an_order_placed_over_rest_is_activated_and_its_history_and_invoice_are_pages(
        discovered: LabHandle, server: Server, users: dict[str, tuple[str, str]],
        playwright: Any) -> None:
    """An order desk's real order (the server's saga pushes r1, cust2 pings srv1), read
    in the console: the order with its state history, and the invoice billed for it."""
    from tests.integration.peers import configs_kept

    shots = artefacts_dir()
    op_name, op_password = users["operator"]
    token = server.login(op_name, op_password)
    res = cli("bss", "offerings", "load")
    assert res.returncode == 0, res.stderr
    tag = secrets.token_hex(3)
    status, customer = server.request("POST", "/tmf-api/customerManagement/v4/customer",
                                      token=token, body={"name": f"Console Ltd {tag}"})
    assert status == 201, customer
    party = [{"id": customer["id"], "role": "Customer"}]
    status, account = server.request(
        "POST", "/tmf-api/accountManagement/v4/billingAccount", token=token,
        body={"name": "main", "relatedParty": party, "taxRate": "0.21"})
    assert status == 201, account
    status, site = server.request(
        "POST", "/tmf-api/geographicSiteManagement/v4/geographicSite", token=token,
        body={"name": f"HQ {tag}", "relatedParty": party, "device": "r1", "port": "eth4",
              "linkAddress": "100.64.12.1/24", "customerAddress": "100.64.12.2",
              "host": "cust2"})
    assert status == 201, site
    with configs_kept("r1"):
        order = placed(server, token, {
            "relatedParty": party, "description": f"console order {tag}",
            "productOrderItem": [{
                "action": "add", "productOffering": {"id": "business-internet-100"},
                "product": {"place": [{"id": site["id"]}], "productCharacteristic": [
                    {"name": "reference", "value": f"PO-{tag}"}]}}]})
        assert order["state"] == "completed", order
        product_id = order["productOrderItem"][0]["product"]["id"]
        try:
            with browser_page(playwright, "order-desk") as page:
                log_in(page, server, op_name, op_password)
                page.goto(f"{server.url}/console/#/orders")
                row = page.locator("#order-list tr", has_text=order["id"])
                row.wait_for()
                assert "completed" in (row.text_content() or "")
                assert f"Console Ltd {tag}" in (row.text_content() or "")
                row.locator("a", has_text=order["id"]).click()
                page.wait_for_selector(f"h1:has-text('Order {order['id']}')")
                rows = page.locator("xpath=//h2[normalize-space()='State history']"
                                    "/following-sibling::*[1]//tr[td]")
                history = [[c.strip() for c in r.locator("td").all_text_contents()]
                           for r in rows.all()]
                # the order's own transitions, in order, as the server recorded them
                assert [r[3] for r in history if r[1] == "order"] == [
                    "acknowledged", "inProgress", "completed"]
                assert page.locator("main", has_text=product_id).count() == 1
                page.screenshot(path=str(shots / "order.png"), full_page=True)

                res = cli("bill", "run", "--account", account["id"], "--period",
                          order["completionDate"][:7], "--json")
                assert res.returncode == 0, res.stderr
                bill = json.loads(res.stdout)
                assert any(ln["product_id"] == product_id for ln in bill["lines"])
                page.goto(f"{server.url}/console/#/bills")
                link = page.locator(f"#bill-list a[data-bill='{bill['id']}']")
                link.wait_for()
                page.goto(f"{server.url}{link.get_attribute('href')}")
                text = page.text_content("body") or ""
                assert bill["number"] in text and f"Console Ltd {tag}" in text
                assert f"Total{bill['total']} {bill['currency']}" in text
                descriptions = [ln["description"] for ln in bill["lines"]]
                assert descriptions and all(d in text for d in descriptions), descriptions
                page.screenshot(path=str(shots / "invoice.png"), full_page=True)
        finally:
            ended = placed(server, token, {
                "relatedParty": party, "productOrderItem": [{
                    "action": "delete", "product": {"id": product_id}}]})
            assert ended["state"] == "completed", ended
