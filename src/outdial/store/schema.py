"""The database schema (SQLAlchemy Core). Times are epoch milliseconds (UTC); money is integer
ten-thousandths of the currency unit, so SQLite and PostgreSQL store the same exact values."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Integer primary keys become SQLite rowid aliases and PostgreSQL identity columns.
Id = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("lines", Integer, nullable=False),
    Column("max_tasks", Integer, nullable=False),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("gift", BigInteger, nullable=False, server_default="0"),
    Column("credit", BigInteger, nullable=False, server_default="0"),
    Column("currency", String(3), nullable=False, server_default="USD"),
    Column("created_at", BigInteger, nullable=False),
    # The SIP trunk this account's calls go out on (by name; none: the default trunk).
    Column("sip_trunk", String(64), nullable=True),
)

sip_trunks = Table(
    "sip_trunks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False, server_default="5060"),
    Column("transport", String(8), nullable=False, server_default="udp"),
    Column("username", String(128), nullable=True),
    Column("password", String(255), nullable=True),
    Column("domain", String(255), nullable=True),
    Column("caller_id", String(32), nullable=True),
    Column("dial_prefix", String(16), nullable=False, server_default=""),
    Column("max_cps", Float, nullable=True),
    Column("max_calls", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Registration (migration 0005): whether workers REGISTER, and the last state one saw.
    Column("register", SmallInteger, nullable=False, server_default="0"),
    Column("register_expires", Integer, nullable=False, server_default="300"),
    Column("registration", String(16), nullable=True),
    Column("registration_code", Integer, nullable=True),
    Column("registration_at", BigInteger, nullable=True),
    # The next free dialing slot (epoch ms) under max_cps, for every worker (migration 0011).
    Column("next_dial_at", BigInteger, nullable=True),
    # How a template's transfer is done on this trunk: refer | bridge (migration 0013).
    Column("transfer", String(8), nullable=False, server_default="refer"),
)

apps = Table(
    "apps",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("app_id", String(32), nullable=False, unique=True),
    Column("name", String(128), nullable=True),
    Column("push_url", Text, nullable=True),
    # Key of the HMAC-SHA256 signature on this app's push reports.
    # Fernet-sealed when OUTDIAL_SECRET_KEYS is set (store/secrets.py), hence the width.
    Column("push_secret", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("api_key", String(64), nullable=False, unique=True),
    # The secret must be kept readable: the LAAFFIC signature is MD5(key + secret + timestamp).
    Column("api_secret", String(255), nullable=False),
    Column("ip_allow", Text, nullable=False, server_default="[]"),
    Column("disabled", SmallInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

rates = Table(
    "rates",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("prefix", String(18), primary_key=True),
    Column("price", BigInteger, nullable=False),
    Column("bill_period", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
)

scripts = Table(
    "scripts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("language", String(16), nullable=True),
    Column("source", Text, nullable=False),
    Column("definition", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("app_pk", Id, ForeignKey("apps.id"), nullable=False),
    Column("task_name", String(64), nullable=False),
    Column("task_type", SmallInteger, nullable=False, server_default="2"),
    Column("status", SmallInteger, nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("paused_from", SmallInteger, nullable=True),
    Column("script_id", Id, ForeignKey("scripts.id"), nullable=False),
    Column("display_num", String(20), nullable=False, server_default=""),
    Column("send_at", BigInteger, nullable=True),
    Column("allow_send_time", Text, nullable=False, server_default="[]"),
    Column("timezone", String(64), nullable=False),
    # "task": windows in the task's zone; "callee": in each callee's zone from the number.
    Column("window_zone", String(8), nullable=False, server_default="task"),
    Column("max_calls", Integer, nullable=False),
    Column("max_ringing_time", Integer, nullable=False),
    Column("enable_recording", SmallInteger, nullable=False),
    Column("callout_rate", Integer, nullable=False),
    Column("num_cnt", Integer, nullable=False),
    Column("submitted_cnt", Integer, nullable=False),
    Column("blocked_cnt", Integer, nullable=False, server_default="0"),
    Column("call_num", Integer, nullable=False, server_default="0"),
    Column("success", Integer, nullable=False, server_default="0"),
    Column("fail", Integer, nullable=False, server_default="0"),
    Column("call_duration", BigInteger, nullable=False, server_default="0"),
    Column("cost", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    # resend/ai and recall rounds create child tasks of an original task.
    Column("parent_task_id", Id, ForeignKey("tasks.id"), nullable=True),
    Column("recall_flow_id", Id, nullable=True),
    Column("recall_round", SmallInteger, nullable=False, server_default="0"),
    UniqueConstraint("account_id", "task_name"),
    Index("ix_tasks_account_status", "account_id", "status"),
)

# Callee states. A callee is dialed only from PENDING; DIALING carries a lease (owner, until).
CALLEE_PENDING = 0
CALLEE_DIALING = 1
CALLEE_CONNECTED = 2
CALLEE_FAILED = 3
CALLEE_CANCELLED = 8
CALLEE_BLOCKED = 9

callees = Table(
    "callees",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # No foreign key on PostgreSQL (migration 0014): its check, one lookup per row, was two
    # thirds of the time a 200,000-callee COPY takes. Callees are written only in the
    # transaction that creates their task, and tasks are never deleted. SQLite keeps the one
    # its first migration made (dropping it would rebuild the table; it costs little there).
    Column("task_id", Id, nullable=False),
    Column("number", String(18), nullable=False),
    *(Column(f"text{i}", String(30), nullable=True) for i in range(1, 11)),
    Column("state", SmallInteger, nullable=False, server_default="0"),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_at", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    # Raised by every claim: a write about a claimed callee counts only with the epoch it was
    # claimed with, so a worker whose lease was taken over cannot finish it (fencing).
    Column("lease_epoch", BigInteger, nullable=False, server_default="0"),
    Index("ix_callees_task_state", "task_id", "state", "id"),
)

# One row per call attempt: LAAFFIC's call record fields plus outdial's.
calls = Table(
    "calls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("task_id", Id, ForeignKey("tasks.id"), nullable=False),
    Column("callee_id", Id, ForeignKey("callees.id"), nullable=False),
    Column("attempt", SmallInteger, nullable=False),
    Column("callee", String(18), nullable=False),
    Column("display_num", String(20), nullable=False),
    Column("script_id", Id, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("submit_time", BigInteger, nullable=False),
    Column("call_time", BigInteger, nullable=True),
    Column("ringing_time", BigInteger, nullable=True),
    Column("answer_time", BigInteger, nullable=True),
    Column("hangup_time", BigInteger, nullable=True),
    Column("call_duration", Integer, nullable=False),
    Column("ring_duration", Integer, nullable=False),
    Column("charged_duration", Integer, nullable=False),
    Column("bill_period", String(16), nullable=True),
    Column("rate", BigInteger, nullable=True),
    Column("cost", BigInteger, nullable=False),
    Column("currency", String(3), nullable=True),
    Column("termination_code", Integer, nullable=False),
    Column("termination_reason", Text, nullable=False),
    Column("sip_code", Integer, nullable=False),
    Column("feedback_value", String(32), nullable=False, server_default="-1"),
    Column("called_info", Text, nullable=True),
    Column("recording_file_id", String(64), nullable=True),
    Column("intent", String(64), nullable=True),
    Column("grade", String(8), nullable=True),
    Column("transcript", Text, nullable=True),
    Column("hangup_side", String(8), nullable=True),
    Column("sms_text", Text, nullable=True),
    Column("path", Text, nullable=True),
    Column("slots", Text, nullable=True),  # JSON object: what the callee named, e.g. a day
    # A template's transfer (migration 0008): where to, and how it went on the carrier.
    Column("transfer_to", String(255), nullable=True),
    Column("transfer_result", String(32), nullable=True),
    Column("worker", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_calls_task", "task_id", "id"),
    Index("ix_calls_account_created", "account_id", "created_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("task_id", Id, ForeignKey("tasks.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

dnc = Table(
    "dnc",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("number", String(18), primary_key=True),
    Column("reason", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

tts_usage = Table(
    "tts_usage",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("used", Integer, nullable=False),
)

# Callees keep submission order in their id: one task's rows are written by one statement.
# Push reports: one outbox row per finished attempt, written with its record; the delivery
# log keeps every try.
PUSH_PENDING = 0
PUSH_DELIVERED = 1
PUSH_GAVE_UP = 2

push_outbox = Table(
    "push_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("call_id", Id, ForeignKey("calls.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", SmallInteger, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    # Raised by every claim of the report (fencing, as on callees).
    Column("lease_epoch", BigInteger, nullable=False, server_default="0"),
    Index("ix_push_outbox_due", "status", "next_at"),
    Index("ix_push_outbox_account", "account_id", "id"),
)

push_attempts = Table(
    "push_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("outbox_id", Id, ForeignKey("push_outbox.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)

# Hang-up SMS chosen by a template's rules: one row per message, written with its call record.
SMS_PENDING = 0
SMS_SENT = 1
SMS_FAILED = 2

sms_messages = Table(
    "sms_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("call_id", Id, ForeignKey("calls.id"), nullable=False, unique=True),
    Column("to_number", String(18), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", SmallInteger, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", BigInteger, nullable=False),
    Column("provider_id", String(128), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    # Raised by every claim of the message (fencing, as on callees).
    Column("lease_epoch", BigInteger, nullable=False, server_default="0"),
    Index("ix_sms_messages_due", "status", "next_at"),
)

# Automatic recall: rounds of child tasks after an original task finishes.
recall_flows = Table(
    "recall_flows",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("task_id", Id, ForeignKey("tasks.id"), nullable=False),
    Column("recall_type", SmallInteger, nullable=False),
    Column("interval_minutes", Integer, nullable=False),
    Column("recall_num", SmallInteger, nullable=False),
    Column("rounds_done", SmallInteger, nullable=False, server_default="0"),
    Column("status", SmallInteger, nullable=False, server_default="0"),
    Column("status_reason", Text, nullable=True),
    Column("next_at", BigInteger, nullable=True),
    Column("last_task_id", Id, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Dialer workers: a heartbeat each few seconds; a worker whose heartbeat stopped (or that
# stopped cleanly) has its leases taken over at once instead of when they expire.
workers = Table(
    "workers",
    metadata,
    Column("id", String(64), primary_key=True),
    # A new value each time a process starts with this id: tells a restart from a twin.
    Column("incarnation", String(32), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("stopped_at", BigInteger, nullable=True),
    Column("fenced_writes", BigInteger, nullable=False, server_default="0"),
)

# A trunk's calls in progress across every worker (migration 0009): one row per call, for the
# trunk's max_calls; a row outlives a dead worker only until expires_at.
trunk_lines = Table(
    "trunk_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("trunk", String(64), nullable=False, index=True),
    Column("worker", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# The simulated timeline (OUTDIAL_SIM_SPEED): one row, anchored at the first start, so every
# process using the database reads the same simulated instant.
sim_clock = Table(
    "sim_clock",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("speed", Float, nullable=False),
    Column("real_epoch_ms", BigInteger, nullable=False),
    Column("sim_epoch_ms", BigInteger, nullable=False),
)

CALLEE_COLUMNS: tuple[str, ...] = (
    "task_id",
    "number",
    *(f"text{i}" for i in range(1, 11)),
)

# What operators did from the CLI or console (credits, cancels, pauses, keys, push URLs), one
# row per action. A credit's row is also its ledger entry: the amount and the reason are kept.
operator_audit = Table(
    "operator_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=True),
    Column("subject", String(64), nullable=True),
    # JSON object: the action's figures (amount, balance after, reason, task ids); never secrets.
    Column("detail", Text, nullable=False),
    Index("ix_operator_audit_account_at", "account_id", "at"),
)

# Operator console users. An admin (account_id NULL) sees every account; an account user sees
# only its account. Failed sign-ins are counted here so every API process throttles alike.
operators = Table(
    "operators",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=True),
    # Raised when the password changes: sessions signed before it no longer count.
    Column("session_version", Integer, nullable=False, server_default="1"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger, nullable=True),
)

# One row: the key that signs console session cookies, made at first use so that every
# process serving the same database accepts the same sessions.
console_keys = Table(
    "console_keys",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("secret", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# A task's call tally as the console last wrote it (migration 0012): counts over its call
# records up to covered_up_to, so a fresh process extends it instead of counting every call.
# Call records are never changed after insert, so a tally at a covered id stays true.
task_tallies = Table(
    "task_tallies",
    metadata,
    Column("task_id", Id, ForeignKey("tasks.id"), primary_key=True, autoincrement=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("covered_up_to", BigInteger, nullable=False),
    Column("records", BigInteger, nullable=False),  # call records counted in it
    # The JSON shape's version: a row of another version is ignored (recounted, rewritten).
    Column("format", SmallInteger, nullable=False),
    Column("tally", Text, nullable=False),  # JSON object, store/tallies.py
    Column("updated_at", BigInteger, nullable=False),
)
