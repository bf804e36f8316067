"""Trunk registration against SIPp as the registrar: digest challenge, refresh before the
binding expires (same Call-ID, new challenge), retry after a refusal, removal on stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.sip import sipp as S

CHALLENGE = """  <send>
    <![CDATA[
      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag09[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="sipp.test", nonce="[pid][clock_tick]", algorithm=MD5
      Content-Length: 0
    ]]>
  </send>
"""


def granted(expires: int) -> str:
    return f"""  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag09[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires={expires}
      Content-Length: 0
    ]]>
  </send>
"""


def refused(status: str) -> str:
    return f"""  <send>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag09[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"""


def recv_register(timeout_ms: int = 30000) -> str:
    return f'  <recv request="REGISTER" timeout="{timeout_ms}"/>\n'


# A REGISTER whose digest SIPp checks (username carrieruser, password s3cret); wrong: 403.
RECV_AUTHORISED = (
    """  <recv request="REGISTER" timeout="30000">
    <action>
      <verifyauth assign_to="authvalid" username="carrieruser" password="s3cret"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good"/>
"""
    + refused("403 Forbidden")
    + """  <label id="good"/>
"""
)


def authorised(label: str) -> str:
    return RECV_AUTHORISED.replace('"good"', f'"{label}"')


def registration(stack: Any, sipp: S.Sipp, **options: Any) -> Any:
    from outdial.telephony.sip.register import Registration

    return Registration(
        stack, sipp.address, "carrieruser", username="carrieruser", password="s3cret", **options
    )


def test_register_with_digest_refresh_before_expiry_and_unregister(
    stack: Any, tmp_path: Path
) -> None:
    # The binding is granted for 4 s: the refresh must come before SIPp's 4 s wait runs out.
    body = (
        recv_register() + CHALLENGE + authorised("ok1") + granted(4)
        + recv_register(4000) + CHALLENGE + authorised("ok2") + granted(4)
        + '  <recv request="REGISTER" timeout="30000">\n    <action>\n'
        '      <ereg regexp="^ *0 *$" search_in="hdr" header="Expires:" check_it="true"'
        ' assign_to="gone"/>\n    </action>\n  </recv>\n'
        + CHALLENGE + authorised("ok3") + granted(0)
        + '  <Reference variables="gone"/>\n'
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "registrar", body).start()
    try:
        reg = registration(stack, sipp, expires=4)
        reg.start()
        assert reg.wait_for("registered", "failed", timeout=30), reg.state
        assert reg.state.state == "registered" and reg.state.expires == 4, sipp.log()
        assert wait_until(lambda: reg.registrations >= 2, 30), (reg.state, sipp.log())
        assert reg.state.state == "registered"
        assert reg.stop(timeout=30).state == "unregistered", sipp.log()
        assert sipp.wait(30), sipp.log()
        assert sipp.succeeded() == 1, sipp.log()
    finally:
        sipp.stop()
    registers = S.received(sipp.messages.read_text(errors="replace"), "REGISTER")
    assert len(registers) == 6
    assert len({S.header(r, "Call-ID") for r in registers}) == 1  # one binding, refreshed
    cseqs = [int(S.header(r, "CSeq").split()[0]) for r in registers]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == 6


def test_refused_registration_is_retried(stack: Any, tmp_path: Path) -> None:
    body = recv_register() + refused("503 Service Unavailable") + authorised_after_retry()
    sipp = S.Sipp(tmp_path, "registrar_retry", body).start()
    try:
        reg = registration(stack, sipp, retry_after=1.0)
        reg.start()
        assert reg.wait_for("failed", "registered", timeout=30)
        assert reg.state.state == "failed" and reg.state.code == 503, reg.state
        assert reg.wait_for("registered", timeout=30), (reg.state, sipp.log())
        reg.stop(timeout=1)  # not answered: SIPp has finished
    finally:
        sipp.wait(10)
        sipp.stop()


def authorised_after_retry() -> str:
    return recv_register() + CHALLENGE + authorised("ok") + granted(300)


def test_wrong_password_is_a_failed_registration(stack: Any, tmp_path: Path) -> None:
    from outdial.telephony.sip.register import Registration

    body = recv_register() + CHALLENGE + RECV_AUTHORISED + granted(300)
    sipp = S.Sipp(tmp_path, "registrar_wrong", body).start()
    try:
        reg = Registration(stack, sipp.address, "carrieruser", password="wrong", retry_after=600)
        reg.start()
        assert reg.wait_for("failed", "registered", timeout=30)
        assert reg.state.state == "failed" and reg.state.code == 403, (reg.state, sipp.log())
        reg.stop(timeout=1)
    finally:
        sipp.wait(10)
        sipp.stop()


def wait_until(condition: Any, timeout: float) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_trunks_that_register_show_their_state_in_trunk_list(
    stack: Any, fresh_db_url: str, tmp_path: Path
) -> None:
    from outdial.cli.sip import shown
    from outdial.clock import SystemClock
    from outdial.dialer.sip import register_trunks
    from outdial.store.repo import Store

    body = (
        recv_register() + CHALLENGE + authorised("ok1") + granted(300)
        + recv_register() + granted(0)  # the unregister on stop
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "registrar_store", body).start()
    store = Store.open(fresh_db_url)
    try:
        host, port = sipp.address
        with store.write() as tx:
            for name, register in (("reg", 1), ("plain", 0)):
                tx.save_trunk(
                    name=name, host=host, port=port, transport="udp", username="carrieruser",
                    password="s3cret", domain=None, caller_id=None, dial_prefix="",
                    max_cps=None, max_calls=None, created_at=0, register=register,
                )  # fmt: skip
        (registration,) = register_trunks(stack, store, SystemClock())
        assert registration.wait_for("registered", "failed", timeout=30), sipp.log()

        def listed() -> dict[str, Any]:
            with store.read() as tx:
                return {t["name"]: t for t in (shown(r) for r in tx.trunks())}

        assert wait_until(lambda: listed()["reg"]["registration"] == "registered", 30)
        row = listed()
        assert row["reg"]["register"] is True and row["reg"]["registration_code"] == 200
        assert row["plain"]["register"] is False and row["plain"]["registration"] is None
        assert row["reg"]["password"] == "***"
        assert registration.stop(timeout=30).state == "unregistered", sipp.log()
        assert wait_until(lambda: listed()["reg"]["registration"] == "unregistered", 30)
        assert sipp.wait(30) and sipp.succeeded() == 1, sipp.log()
    finally:
        sipp.stop()
        store.close()


def test_tcp_trunk_registers_over_tcp(stack: Any, fresh_db_url: str, tmp_path: Path) -> None:
    from outdial.clock import SystemClock
    from outdial.dialer.sip import register_trunks
    from outdial.store.repo import Store

    body = (
        recv_register() + CHALLENGE + authorised("ok1") + granted(300)
        + recv_register() + granted(0)  # the unregister on stop
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "registrar_tcp", body, extra=("-t", "t1")).start()
    store = Store.open(fresh_db_url)
    try:
        host, port = sipp.address
        with store.write() as tx:
            tx.save_trunk(
                name="reg-tcp", host=host, port=port, transport="tcp", username="carrieruser",
                password="s3cret", domain=None, caller_id=None, dial_prefix="",
                max_cps=None, max_calls=None, created_at=0, register=1,
            )  # fmt: skip
        (registration,) = register_trunks(stack, store, SystemClock())
        assert registration.wait_for("registered", "failed", timeout=30), sipp.log()
        assert registration.state.state == "registered", (registration.state, sipp.log())
        assert registration.stop(timeout=30).state == "unregistered", sipp.log()

        def noted() -> str | None:  # the writer thread is done with the store before it closes
            with store.read() as tx:
                trunk = tx.trunk("reg-tcp")
            return trunk.registration if trunk else None

        assert wait_until(lambda: noted() == "unregistered", 30)
        assert sipp.wait(30) and sipp.succeeded() == 1, sipp.log()
    finally:
        sipp.stop()
        store.close()
    registers = S.received(sipp.messages.read_text(errors="replace"), "REGISTER")
    assert len(registers) == 3
    assert all(S.header(r, "Via").startswith("SIP/2.0/TCP") for r in registers)
    assert "transport=tcp" in S.header(registers[0], "Contact").lower()
