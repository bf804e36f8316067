"""SIP trunks (where calls go out) and which trunk an account's calls use."""

from __future__ import annotations

from dataclasses import dataclass

from outdial.clock import Clock, epoch_ms
from outdial.domain.text import check_text, check_texts
from outdial.errors import NotFound, ValidationError
from outdial.store.records import TrunkRecord
from outdial.store.repo import Store


@dataclass(frozen=True, slots=True)
class TrunkSettings:
    """A trunk as an operator gives it; ``add`` checks every value before storing."""

    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    username: str | None = None
    password: str | None = None
    domain: str | None = None
    caller_id: str | None = None
    dial_prefix: str = ""
    cps: float | None = None
    max_calls: int | None = None
    register: bool = False
    register_expires: int = 300
    transfer: str = "refer"  # how template transfers go: refer (blind) or bridge (second leg)


class TrunkService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def add(self, t: TrunkSettings) -> TrunkRecord:
        """Add a trunk, or replace the settings of the trunk with this name."""
        check_texts(
            {
                "name": t.name, "--host": t.host, "--transport": t.transport,
                "--username": t.username, "--password": t.password, "--domain": t.domain,
                "--caller-id": t.caller_id, "--dial-prefix": t.dial_prefix,
            }
        )  # fmt: skip
        if t.transport.lower() not in ("udp", "tcp"):
            raise ValidationError(f"transport {t.transport!r}: use udp or tcp")
        if not 0 < t.port < 65536:
            raise ValidationError(f"port {t.port} is out of range")
        if (t.cps is not None and t.cps <= 0) or (t.max_calls is not None and t.max_calls < 1):
            raise ValidationError("cps and max-calls must be positive")
        if t.transfer.lower() not in ("refer", "bridge"):
            raise ValidationError(f"transfer {t.transfer!r}: use refer or bridge")
        if not 60 <= t.register_expires <= 86400:
            raise ValidationError("register-expires must be 60-86400 seconds")
        if t.register and not (t.username or t.caller_id):
            raise ValidationError("--register needs --username (or --caller-id) as the user")
        with self.store.write() as tx:
            return tx.save_trunk(
                name=t.name, host=t.host, port=t.port, transport=t.transport.lower(),
                username=t.username, password=t.password, domain=t.domain,
                caller_id=t.caller_id, dial_prefix=t.dial_prefix, max_cps=t.cps,
                max_calls=t.max_calls, created_at=epoch_ms(self.clock.now()),
                register=int(t.register), register_expires=t.register_expires,
                transfer=t.transfer.lower(),
            )  # fmt: skip

    def list(self) -> list[TrunkRecord]:
        with self.store.read() as tx:
            return tx.trunks()

    def remove(self, name: str) -> None:
        """Remove a trunk no account uses."""
        check_text(name, "name")
        with self.store.write() as tx:
            if not tx.delete_trunk(name):
                raise NotFound(f"no trunk named {name!r}")

    def set_account_trunk(self, account_id: int, trunk: str | None) -> None:
        """Send an account's calls out on ``trunk`` (None: the default trunk again)."""
        check_texts({"trunk": trunk})
        with self.store.write() as tx:
            if tx.account(account_id) is None:
                raise NotFound(f"account {account_id} does not exist")
            if trunk is not None and tx.trunk(trunk) is None:
                raise NotFound(f"no trunk named {trunk!r} (outdial trunk add)")
            tx.update_account(account_id, sip_trunk=trunk)
