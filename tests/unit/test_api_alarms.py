"""The TMF642 alarm endpoints and the live stream, on the fault agent's own tables."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agents.fault.agent import FaultAgent
from agents.fault.rules import load_fault_rules
from northbound.api import create_app
from tests.unit.test_fault_agent import engine, link_trap  # noqa: F401 - the fixture

BASE = "/tmf-api/alarmManagement/v4"


def _raised(engine: Engine) -> tuple[TestClient, dict[str, str]]:  # noqa: F811
    agent = FaultAgent(engine, load_fault_rules())
    agent.handle_traps([link_trap("r1", 2, up=False), link_trap("r2", 2, up=False),
                        link_trap("r3", 4, up=False)])
    client = TestClient(create_app(engine))
    roots = client.get(f"{BASE}/alarm", params={"state": "active", "isRootCause": True}).json()
    by_resource = {a["alarmedObject"]["id"]: a["id"] for a in roots}
    return client, by_resource


def test_list_is_tmf642_shaped_with_roots_and_paging(engine: Engine) -> None:  # noqa: F811
    client, roots = _raised(engine)
    assert sorted(roots) == ["eth3", "r1:eth1--r2:eth1"]
    everything = client.get(f"{BASE}/alarm", params={"limit": 2})
    assert everything.headers["X-Total-Count"] == "4"
    assert everything.headers["X-Result-Count"] == "2"
    link = client.get(f"{BASE}/alarm/{roots['r1:eth1--r2:eth1']}").json()
    for key in ("id", "alarmType", "perceivedSeverity", "probableCause", "specificProblem",
                "alarmedObject", "state", "ackState", "ackUserId", "alarmRaisedTime",
                "alarmChangedTime", "alarmClearedTime", "isRootCause", "correlatedAlarm",
                "crossedThresholdInformation", "comment"):
        assert key in link, key
    assert link["isRootCause"] is True and len(link["correlatedAlarm"]) == 2
    child = client.get(link["correlatedAlarm"][0]["href"].replace("http://testserver", ""))
    assert child.json()["parentAlarm"][0]["id"] == link["id"]


def test_ack_with_note_then_refusals_are_409_problems(engine: Engine) -> None:  # noqa: F811
    client, roots = _raised(engine)
    aid = roots["eth3"]
    done = client.patch(f"{BASE}/alarm/{aid}", json={
        "ackState": "acknowledged", "ackUserId": "olga", "x_note": "known, ticket 7"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["ackState"], body["ackUserId"], body["x_ackNote"]) == (
        "acknowledged", "olga", "known, ticket 7")
    again = client.patch(f"{BASE}/alarm/{aid}", json={
        "ackState": "acknowledged", "ackUserId": "ivan", "x_note": "me"})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "already acknowledged by olga" in again.json()["detail"]
    missing = client.patch(f"{BASE}/alarm/999", json={
        "ackState": "acknowledged", "ackUserId": "olga", "x_note": "x"})
    assert missing.status_code == 404
    task = client.post(f"{BASE}/ackAlarms", json={
        "alarmPattern": [{"id": aid}, {"id": roots["r1:eth1--r2:eth1"]}, {"id": "999"}],
        "ackUserId": "ivan", "x_note": "on it"}).json()
    assert [a["id"] for a in task["ackedAlarm"]] == [roots["r1:eth1--r2:eth1"]]
    assert {r["id"] for r in task["x_refused"]} == {aid, "999"}


def test_clear_by_hand_and_comments(engine: Engine) -> None:  # noqa: F811
    client, roots = _raised(engine)
    link = roots["r1:eth1--r2:eth1"]
    res = client.post(f"{BASE}/commentAlarms", json={
        "alarmPattern": [{"id": link}], "comment": {"comment": "fibre", "userId": "olga"}})
    assert res.json()["state"] == "done"
    cleared = client.patch(f"{BASE}/alarm/{link}", json={
        "state": "cleared", "ackUserId": "olga", "x_note": "repaired"}).json()
    assert cleared["state"] == "cleared" and cleared["perceivedSeverity"] == "cleared"
    assert cleared["comment"][0]["comment"] == "fibre"
    # its children stand alone again
    roots_now = client.get(f"{BASE}/alarm", params={"state": "active",
                                                     "isRootCause": True}).json()
    assert len(roots_now) == 3


def test_event_stream_sends_each_changed_alarm(engine: Engine) -> None:  # noqa: F811
    client, _ = _raised(engine)
    with client.stream("GET", "/api/alarms/events", params={"once": True}) as res:
        assert res.headers["content-type"].startswith("text/event-stream")
        text = "".join(res.iter_text())
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert len(events) == 4
    assert {e["x_problem"] for e in events} == {"link-down"}


def test_served_app_receives_traps_and_exposes_the_counters(
        engine: Engine) -> None:  # noqa: F811
    import socket
    import time

    from agents.fault.settings import FaultSettings
    from collectors.ber import Message, PduType, VarBind, encode_message

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(engine, fault=FaultSettings(listen_host="127.0.0.1", listen_port=port,
                                                 perf_events_every_s=0.2))
    with TestClient(app) as client:
        service = app.state.fault
        service.receiver.set_communities({b"c0mm": "lab"})
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"\x30\x03garbage", ("127.0.0.1", port))
            sender.sendto(encode_message(Message(1, b"c0mm", PduType.TRAP_V2, 1, 0, 0, [
                VarBind("1.3.6.1.2.1.1.3.0", 1, "TimeTicks"),
                VarBind("1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.6.3.1.1.5.1", "ObjectIdentifier")])),
                ("127.0.0.1", port))
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:
            text = client.get("/metrics").text
            if "switchboard_fault_receiver_malformed_total 1.0" in text \
                    and "switchboard_fault_receiver_accepted_total 1.0" in text:
                break
            time.sleep(0.2)
        assert "switchboard_fault_receiver_malformed_total 1.0" in text
        assert "switchboard_fault_receiver_accepted_total 1.0" in text
        # the coldStart came from 127.0.0.1, not a device: counted, not an alarm
        assert "switchboard_fault_agent_unknown_source_total 1.0" in text


def test_webhook_receives_tmf642_notifications(engine: Engine) -> None:  # noqa: F811
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from agents.fault.notify import Notifier

    received: list[list[dict[str, object]]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    agent = FaultAgent(engine, load_fault_rules())
    notices = agent.handle_traps([link_trap("r3", 4, up=False)])
    notifier = Notifier(engine, [f"http://127.0.0.1:{server.server_port}/hook",
                                 "http://127.0.0.1:9/nobody-listens"])
    pool = ThreadPoolExecutor(2)

    async def run() -> None:
        await notifier.publish(notifier.render(notices), pool)

    asyncio.run(run())
    pool.shutdown(wait=True)
    server.shutdown()
    [batch] = received
    [doc] = batch
    assert doc["eventType"] == "AlarmCreateEvent"
    assert doc["event"]["alarm"]["alarmedObject"]["name"] == "r3:eth3"  # type: ignore[index]
    assert (notifier.stats.webhook_sent, notifier.stats.webhook_failures) == (1, 1)
