#!/usr/bin/env python3
"""Independent check of the atm-psk-v2 known-answer vectors, written from docs/PROTOCOL.md alone.

This is a small second implementation of protocol version 2 (the handshake key schedule with
the bank's pinned static key, the record layer, and the bank pin of §15.1), written by another
team from the specification only, without reading the reference implementation. It:

  1. recomputes every handshake value from `inputs` (§5, §6, §7) and compares it with the file;
  2. receives the handshake messages as each peer would (§7), answers the ClientHello as the
     bank would, and checks that a bank holding the terminal's PSK but another static key, a
     version 1 hello, and a low-order pinned key are all refused;
  3. re-seals every record (§8.2, §8.3) and compares the ciphertext, MAC input, MAC and wire
     text; then opens every `wire` with its own receiver (§8.4) and checks the plaintext;
  4. feeds tampered, replayed, reflected and malformed messages to its own receivers, each of
     which must be refused;
  5. also recomputes the worked example of §13.1 and the examples of §15 from the values
     printed in the spec, and checks that every hex value printed in §13.1 is one it derived;
  6. implements enrollment by a one-time code (§16): recomputes the `enrollment` section of
     the file, receives its messages as each peer would, refuses a wrong code, a bank identity
     swapped in flight, a low-order bank key, a code id that is not one, and a terminal's
     server_hello in place of an enroll_server_hello; and recomputes the example of §16.9;
  7. checks the signed cards of §17: derives the vector session's channel binding from its
     PRK, the card's Ed25519 public keys from their seeds, the signed login and reissue
     messages and their signatures, and the three requests' exact text; and that the login
     signature does not verify for another session's binding, another name or another key.
  8. implements the padding of §8.6: pads every record plaintext of the file from its own
     JSON and compares, recomputes the longest message sizes printed in §8.6 from the field
     limits of §9.1, and knows every request, response and error code of §9.3-§9.7 and §16.7
     (every example printed there parses, every type in their tables is known).

Usage:  python3 docs/interop/check_vectors.py [path/to/v2.json]
        (default: protocol/vectors/v2.json relative to the repository root)

Prints one line per check group, then exactly one summary line `N passed, M failed`, and
exits 0 only if nothing failed. Needs Python 3.11+ and the `cryptography` package.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
import traceback
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

# ---------------------------------------------------------------------------------------------
# §4 Constants and limits
# ---------------------------------------------------------------------------------------------

PROTOCOL_VERSION = 2
MAX_HANDSHAKE_LEN = 1024
MAX_RECORD_LEN = 16384
MAX_PLAINTEXT_LEN = 8000
MAX_CIPHERTEXT_LEN = 8016  # §8.4 step 5: the padded length of a MAX_PLAINTEXT_LEN plaintext
MAX_HISTORY = 25
DEFAULT_MAX_SKEW_MS = 30000
MAX_RECORDS_PER_DIRECTION = 2**32  # §8.5: seq 0 .. 2^32 - 1 per direction
CREDENTIAL_REQUEST_LEN = 2200  # §8.6: padded plaintext of a request that carries a credential
CREDENTIAL_REPLY_LEN = 1024  # §8.6: padded plaintext of the answer to one
U8_MAX, U32_MAX, U64_MAX = 2**8 - 1, 2**32 - 1, 2**64 - 1

# ---------------------------------------------------------------------------------------------
# §6.1 Labels: ASCII bytes, no terminator, all with the 11-byte prefix "atm-psk-v2 ".
# ---------------------------------------------------------------------------------------------

PREFIX = b"atm-psk-v2 "
LABEL_TRANSCRIPT = PREFIX + b"transcript"
LABEL_MASTER_SECRET = PREFIX + b"master secret"
LABEL_RECORD = PREFIX + b"record"
LABEL_TERMINAL_ID = PREFIX + b"terminal id"  # §6.7: HKDF salt of the sealed id's keys
LABEL_SEALED_ID = PREFIX + b"sealed terminal id"  # §6.7: first bytes of its MAC input
SEALED_ID_LEN = 112  # §4, §6.7: 80 bytes of ciphertext, then a 32-byte MAC
# §6.4: the HKDF `info` of each of the six session keys, named as in the vectors file (§13.2).
KEY_LABELS = {
    "c2s_enc": PREFIX + b"c2s enc",
    "c2s_mac": PREFIX + b"c2s mac",
    "s2c_enc": PREFIX + b"s2c enc",
    "s2c_mac": PREFIX + b"s2c mac",
    "client_finished": PREFIX + b"client finished",
    "server_finished": PREFIX + b"server finished",
}

# §8.2: the direction byte of each direction.
DIRECTION_BYTE = {"c2s": 0x01, "s2c": 0x02}


class Refused(Exception):
    """A message was refused. Peers only ever see "it failed"; `detail` is for the local log."""

    def __init__(self, step: str, detail: str = ""):
        super().__init__(f"{step}: {detail}" if detail else step)
        self.step = step


# ---------------------------------------------------------------------------------------------
# §3.1 Bytes as hex: lowercase only, even length, exact length for fixed-size fields.
# ---------------------------------------------------------------------------------------------

_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def decode_hex(value: Any, nbytes: int | None = None, step: str = "hex") -> bytes:
    """Strictly decode a hex field (§3.1). bytes.fromhex alone is too lenient (it takes
    uppercase and spaces), so the text is matched against the exact alphabet first."""
    if type(value) is not str or not _LOWER_HEX.fullmatch(value):
        raise Refused(step, "not lowercase hex of even length")
    raw = bytes.fromhex(value)
    if nbytes is not None and len(raw) != nbytes:
        raise Refused(step, f"expected {nbytes} bytes, got {len(raw)}")
    return raw


def u64be(x: int) -> bytes:
    """§3.2: a u64 inside MAC, hash and KDF inputs is 8 bytes big-endian."""
    return x.to_bytes(8, "big")


# ---------------------------------------------------------------------------------------------
# §3.2, §3.3 Strict JSON: objects only, no duplicate keys, integers are plain non-negative
# digits (no sign, fraction, exponent), no NaN/Infinity, no null anywhere we accept.
# ---------------------------------------------------------------------------------------------


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise Refused("json", f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _plain_integer(text: str) -> int:
    if text.startswith("-"):  # "-0" and every negative number: no sign allowed (§3.2)
        raise Refused("json", "signed integer")
    return int(text)


def _no_float(text: str) -> Any:
    raise Refused("json", "fraction or exponent in a number")


def _no_constant(text: str) -> Any:
    raise Refused("json", f"{text} is not JSON")


def _check_scalar_values(value: Any) -> None:
    """Reject strings that are not Unicode scalar values (lone surrogates from \\ud800 escapes)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused("json", "lone surrogate in string") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_scalar_values(k)
            _check_scalar_values(v)
    elif isinstance(value, list):
        for v in value:
            _check_scalar_values(v)


def strict_json_object(data: bytes, step: str = "json") -> dict[str, Any]:
    """Parse one UTF-8 JSON text whose top-level value must be an object (§2, §3.3)."""
    try:
        text = data.decode("utf-8")  # strict: invalid UTF-8 is refused
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_int=_plain_integer,
            parse_float=_no_float,
            parse_constant=_no_constant,
        )
    except Refused as e:
        raise Refused(step, str(e)) from None
    except (
        ValueError,
        RecursionError,
    ) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Refused(step, f"not JSON: {e}") from None
    if not isinstance(value, dict):
        raise Refused(step, "top-level value is not an object")
    _check_scalar_values(value)
    return value


def is_uint(value: Any, maximum: int) -> bool:
    """§3.2: a JSON integer in 0..maximum. (bool is a subclass of int in Python: excluded.)"""
    return type(value) is int and 0 <= value <= maximum


def require_fields(obj: dict[str, Any], names: list[str], step: str) -> None:
    """§3.3: exactly these field names, no missing and no unknown ones."""
    if set(obj) != set(names):
        raise Refused(step, f"fields {sorted(obj)} != {sorted(names)}")


def compact_json(obj: dict[str, Any]) -> str:
    """§3.3: what a sender emits: compact, keys in the listed (insertion) order, only the
    escapes JSON requires, non-ASCII left as UTF-8. Integers stay integers."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# §9.1 Application field types, and §9.3 / §9.4 request and response shapes.
# Each validator raises Refused("schema") on a violation (a record failure, §8.4 step 9).
# ---------------------------------------------------------------------------------------------

_USERNAME = re.compile(r"[_\-.0-9a-z]{1,250}")
_ACCOUNT = re.compile(r"[0-9A-Z-]{1,32}")
_TERMINAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BANK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # §4: same alphabet and length as a terminal id
ERROR_CODES = {
    "bad_request",
    "auth_failed",
    "throttled",
    "not_logged_in",
    "already_logged_in",
    "name_taken",
    "weak_password",
    "amount_invalid",
    "limit_exceeded",
    "deposit_limit",
    "insufficient_funds",
    "tx_id_reused",
    "busy",
    "internal",
    "not_allowed",
}  # §9.6, the closed set


def _fail(what: str) -> None:
    raise Refused("schema", what)


def v_username(v: Any) -> None:
    # ASCII only, so characters = bytes; the regex bounds the length to 1..250.
    if type(v) is not str or not _USERNAME.fullmatch(v):
        _fail("username")


def v_full_name(v: Any) -> None:
    # 1..100 Unicode scalar values, no Cc characters, not empty or only White_Space.
    # Python has no White_Space property lookup; str.isspace() agrees with it except on
    # U+001C..U+001F, which are Cc and already refused. (Approximation: see README notes.)
    if type(v) is not str or not 1 <= len(v) <= 100:
        _fail("full_name length")
    if any(unicodedata.category(c) == "Cc" for c in v):
        _fail("full_name control character")
    if v.isspace():
        _fail("full_name only whitespace")


def v_account(v: Any) -> None:
    if type(v) is not str or not _ACCOUNT.fullmatch(v):
        _fail("account")


def v_password(v: Any) -> None:
    if type(v) is not str or not 1 <= len(v.encode("utf-8")) <= 1024:
        _fail("password")


def v_card(v: Any) -> None:
    if type(v) is not str or not re.fullmatch(r"[0-9a-f]{64}", v):
        _fail("card")


def v_signature(v: Any) -> None:  # §17: an Ed25519 signature, 128 lowercase hex
    if not (isinstance(v, str) and re.fullmatch(r"[0-9a-f]{128}", v)):
        _fail("signature")


def v_card_public(v: Any) -> None:  # §17: an Ed25519 public key, 64 lowercase hex
    if not (isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)):
        _fail("card_public")


def v_txid(v: Any) -> None:
    if type(v) is not str or not re.fullmatch(r"[0-9a-f]{32}", v):
        _fail("txid")


def v_u64(v: Any) -> None:  # Cents, time_ms
    if not is_uint(v, U64_MAX):
        _fail("u64")


def v_u32(v: Any) -> None:  # history `limit`: any u32 parses; 1..25 is the bank's rule (§9.5)
    if not is_uint(v, U32_MAX):
        _fail("u32")


def v_tx_kind(v: Any) -> None:
    if type(v) is not str or v not in ("open", "deposit", "withdraw"):
        _fail("kind")


def v_terminal_id(v: Any) -> None:  # §5.1: 1..64 characters of [A-Za-z0-9_-]
    if type(v) is not str or not _TERMINAL_ID.fullmatch(v):
        _fail("terminal id")


_NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def v_node_name(v: Any) -> None:  # §9.7 LiveSession: 1..64 characters of [A-Za-z0-9._-]
    if type(v) is not str or not _NODE_NAME.fullmatch(v):
        _fail("node name")


def v_error_code(v: Any) -> None:
    if type(v) is not str or v not in ERROR_CODES:
        _fail("error code")


def v_string(v: Any) -> None:
    # §9.7 text fields (audit lines, a terminal's name, who is logged in): the bank keeps them
    # to 120 bytes; GUESS: the spec does not say a receiver must check, so any string parses.
    if type(v) is not str:
        _fail("string")


def v_bool(v: Any) -> None:
    if type(v) is not bool:
        _fail("bool")


def v_terminal_name(v: Any) -> None:
    # §9.7: 1..64 Unicode scalar values, no Cc, not empty or only whitespace (as FullName).
    if type(v) is not str or not 1 <= len(v) <= 64:
        _fail("terminal name length")
    if any(unicodedata.category(c) == "Cc" for c in v) or v.isspace():
        _fail("terminal name")


def v_total_cents(v: Any) -> None:
    # §9.7: decimal digits without leading zeros, a value up to 2^128 - 1, as a JSON string.
    if type(v) is not str or not re.fullmatch(r"0|[1-9][0-9]*", v) or int(v) >= 2**128:
        _fail("TotalCents")


def v_role(v: Any) -> None:
    if type(v) is not str or v not in ("atm", "console"):
        _fail("role")


def v_key(v: Any) -> None:  # terminal_added: the new terminal's PSK, 64 lowercase hex
    if type(v) is not str or not re.fullmatch(r"[0-9a-f]{64}", v):
        _fail("key")


def v_per_minute(v: Any) -> None:
    # §9.7 says exactly 60 u32; GUESS: the length is the bank's promise, only the type is
    # checked here (the spec's own example is shortened to three).
    if type(v) is not list or not all(is_uint(n, U32_MAX) for n in v):
        _fail("per_minute")


def v_list_of(
    fields: dict[str, Callable[[Any], None]],
    most: int,
    name: str,
    optional: dict[str, Callable[[Any], None]] | None = None,
) -> Callable[[Any], None]:
    # GUESS: like `history` entries, a list longer than the bound §9.7 gives is refused.
    def check(v: Any) -> None:
        if type(v) is not list or len(v) > most:
            _fail(name)
        for item in v:
            check_fields(item, fields, optional)

    return check


def v_chain(v: Any) -> None:
    # §9.7 ChainStatus: tagged by `state`.
    if not isinstance(v, dict) or type(v.get("state")) is not str:
        _fail("chain")
    variants = {"linked": {"entries": v_u64}, "broken": {"entry": v_u64, "problem": v_string}}
    fields = variants.get(v["state"])
    if fields is None:
        _fail("chain state")
    check_fields({k: x for k, x in v.items() if k != "state"}, fields)


HISTORY_ENTRY = {
    "txid": v_txid,
    "kind": v_tx_kind,
    "amount_cents": v_u64,
    "balance_cents": v_u64,
    "time_ms": v_u64,
}


LIVE_SESSION = {
    "conn": v_u64,
    "terminal": v_terminal_id,
    "role": v_role,
    "since_ms": v_u64,
    "node": v_node_name,
}
LIVE_SESSION_OPTIONAL = {"user": v_string}
AUDIT_LINE = {"seq": v_u64, "time_ms": v_u64, "action": v_string}
AUDIT_LINE_OPTIONAL = {
    "user": v_string,
    "account": v_string,
    "amount_cents": v_u64,
    "terminal": v_string,
    "detail": v_string,
}
TERMINAL_INFO = {
    "id": v_terminal_id,
    "name": v_string,
    "role": v_role,
    "revoked": v_bool,
    "created_ms": v_u64,
}
TERMINAL_INFO_OPTIONAL = {  # §9.7: the deposit ceilings of §9.5 and the day's deposits
    "max_deposit_cents": v_u64,
    "max_deposit_per_day_cents": v_u64,
    "deposited_today_cents": v_u64,
}


def v_entries(v: Any) -> None:
    # GUESS: the spec says a history response has "at most limit (<= 25) entries" but does not
    # say whether the ATM must refuse more; we refuse more than MAX_HISTORY.
    if type(v) is not list or len(v) > MAX_HISTORY:
        _fail("entries")
    for entry in v:
        check_fields(entry, HISTORY_ENTRY)


# §9.3: request variants and their fields, in emitted order.
REQUESTS: dict[str, dict[str, Callable[[Any], None]]] = {
    "register": {"username": v_username, "full_name": v_full_name, "password": v_password},
    "login": {"username": v_username, "password": v_password},
    "open_card_account": {
        "username": v_username,
        "initial_cents": v_u64,
        "txid": v_txid,
        "card": v_card,
    },
    "card_login": {"username": v_username, "card": v_card},
    # §17: signed cards.
    "card_login_signed": {"username": v_username, "signature": v_signature},
    "open_signed_card_account": {
        "username": v_username,
        "initial_cents": v_u64,
        "txid": v_txid,
        "card_public": v_card_public,
    },
    "reissue_card_signed": {"signature": v_signature, "new_public": v_card_public},
    "upgrade_card": {"old": v_card, "new_public": v_card_public},
    "balance": {},
    "deposit": {"txid": v_txid, "amount_cents": v_u64},
    "withdraw": {"txid": v_txid, "amount_cents": v_u64},
    "history": {"limit": v_u32},
    "logout": {},
    "enroll": {},  # §16.7: parses anywhere; refused (not_allowed) outside an enrollment session
    "change_password": {"old": v_password, "new": v_password},  # §9.3, ATM and console
    "reissue_card": {"old": v_card, "new": v_card},  # §9.3, ATM
    # §9.7 console requests
    "operator_login": {"username": v_username, "password": v_password},
    "console_overview": {},
    "console_audit": {},
    "console_terminals": {},
    "add_terminal": {"name": v_terminal_name},
    "revoke_terminal": {"terminal": v_terminal_id},
}

# §9.7: optional fields, absent when empty, never null (§3.3).
REQUESTS_OPTIONAL: dict[str, dict[str, Callable[[Any], None]]] = {
    "add_terminal": {"max_deposit_cents": v_u64, "max_deposit_per_day_cents": v_u64},
}

# §8.6: the requests that carry a credential; they, and the answer to each, are padded.
CREDENTIAL_REQUESTS = {
    "register",
    "login",
    "operator_login",
    "change_password",
    "card_login",
    "open_card_account",
    "reissue_card",
}

# §9.4: response variants and their fields, in emitted order.
RESPONSES: dict[str, dict[str, Callable[[Any], None]]] = {
    "welcome": {
        "username": v_username,
        "full_name": v_full_name,
        "account": v_account,
        "balance_cents": v_u64,
    },
    "account_opened": {"account": v_account, "balance_cents": v_u64},
    "balance": {"balance_cents": v_u64},
    "deposited": {"txid": v_txid, "amount_cents": v_u64, "balance_cents": v_u64},
    "withdrawn": {"txid": v_txid, "amount_cents": v_u64, "balance_cents": v_u64},
    "history": {"entries": v_entries},
    "logged_out": {},
    "error": {"code": v_error_code},
    "enrolled": {"terminal": v_terminal_id},  # §16.7
    "password_changed": {},  # §9.4
    "card_reissued": {},  # §9.4
    # §9.7 console responses
    "operator_welcome": {"username": v_username},
    "overview": {
        "now_ms": v_u64,
        "accounts": v_u64,
        "deposits_cents": v_total_cents,
        "transactions_today": v_u64,
        "per_minute": v_per_minute,
        "sessions_total": v_u64,
        "sessions": v_list_of(LIVE_SESSION, 20, "sessions", LIVE_SESSION_OPTIONAL),
        "chain": v_chain,
    },
    "audit_entries": {
        "total": v_u64,
        "entries": v_list_of(AUDIT_LINE, 12, "audit entries", AUDIT_LINE_OPTIONAL),
    },
    "terminals": {
        "total": v_u64,
        "terminals": v_list_of(TERMINAL_INFO, 25, "terminals", TERMINAL_INFO_OPTIONAL),
    },
    "terminal_added": {"terminal": v_terminal_id, "name": v_terminal_name, "key": v_key},
    "terminal_revoked": {"terminal": v_terminal_id},
}

RESPONSES_OPTIONAL: dict[str, dict[str, Callable[[Any], None]]] = {
    "overview": {"checkpoint_entries": v_u64, "checkpoint_ms": v_u64},
}
OPTIONAL = {"request": REQUESTS_OPTIONAL, "response": RESPONSES_OPTIONAL}


def check_fields(
    obj: Any,
    fields: dict[str, Callable[[Any], None]],
    optional: dict[str, Callable[[Any], None]] | None = None,
) -> None:
    """Exactly `fields`, plus any of `optional` (absent when empty: a null one is refused by
    its validator, §3.3)."""
    if not isinstance(obj, dict):
        _fail("not an object")
    optional = optional or {}
    require_fields(obj, list(fields) + [k for k in optional if k in obj], "schema")
    for name, validate in fields.items():
        validate(obj[name])
    for name, validate in optional.items():
        if name in obj:
            validate(obj[name])


def check_tagged(
    obj: Any,
    variants: dict[str, dict[str, Callable[[Any], None]]],
    optional: dict[str, dict[str, Callable[[Any], None]]] | None = None,
) -> None:
    """§3.3 tagged union: `type` names the variant, the other keys are exactly its fields
    (a field-less variant carries `type` and nothing else) and any of its optional ones."""
    if not isinstance(obj, dict) or type(obj.get("type")) is not str:
        _fail("tagged union without a string type")
    fields = variants.get(obj["type"])
    if fields is None:
        _fail(f"unknown type {obj['type']!r}")
    rest = {k: v for k, v in obj.items() if k != "type"}
    check_fields(rest, fields, (optional or {}).get(obj["type"]))


# ---------------------------------------------------------------------------------------------
# §6 Key schedule
# ---------------------------------------------------------------------------------------------


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def x25519_share(secret: bytes) -> bytes:
    """§7.2: share = X25519(secret, 9). The library clamps the scalar (decodeScalar25519)."""
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def x25519_dh(secret: bytes, peer_share: bytes) -> bytes:
    """§6.3, §7.2: dh = X25519(own secret, peer share); an all-zero dh fails the handshake."""
    try:
        dh = X25519PrivateKey.from_private_bytes(secret).exchange(
            X25519PublicKey.from_public_bytes(peer_share)
        )
    except ValueError:
        # OpenSSL itself refuses to return the all-zero result of a low-order point.
        raise Refused("dh", "all-zero shared secret (library refused)") from None
    # Check ourselves too (§14: do it yourself if the library does not), in constant time.
    if hmac.compare_digest(dh, bytes(32)):
        raise Refused("dh", "all-zero shared secret")
    return dh


def transcript_input(
    bank_id: str,
    bank_static_public: bytes,
    terminal_id: str,
    client_nonce: bytes,
    client_share: bytes,
    client_ts: int,
    bank_nonce: bytes,
    bank_share: bytes,
    bank_ts: int,
) -> bytes:
    """§6.2: the SHA-256 input, 200 + len(bank_id) + len(terminal_id) bytes."""
    bid = bank_id.encode("ascii")
    tid = terminal_id.encode("ascii")
    return (
        LABEL_TRANSCRIPT  # 21 bytes
        + bytes([PROTOCOL_VERSION])  # u8(2)
        + bytes([len(bid)])  # u8(len(bank_id)), 1..64
        + bid  # the ASCII bytes of the bank id
        + bank_static_public  # 32 bytes: the pinned (ATM) or own (bank) static public key
        + bytes([len(tid)])  # u8(len(terminal_id)), 1..64
        + tid  # the ASCII bytes of the id
        + client_nonce  # 32 bytes
        + client_share  # 32 bytes, exactly as on the wire
        + u64be(client_ts)  # the ClientHello's timestamp
        + bank_nonce  # 32 bytes
        + bank_share  # 32 bytes, exactly as on the wire
        + u64be(bank_ts)  # the ServerHello's timestamp
    )


def hkdf_expand_32(prk: bytes, info: bytes) -> bytes:
    """§6.4: HKDF-Expand of RFC 5869 with SHA-256, L = 32 (the library's real implementation)."""
    return HKDFExpand(algorithm=hashes.SHA256(), length=32, info=info).derive(prk)


def master_secret(
    psk: bytes, client_nonce: bytes, bank_nonce: bytes, dh_ee: bytes, dh_es: bytes
) -> bytes:
    """§6.3: MS = HMAC(PSK, label || client_nonce || bank_nonce || dh_ee || dh_es)."""
    msg = LABEL_MASTER_SECRET + client_nonce + bank_nonce + dh_ee + dh_es
    assert len(msg) == 152  # §6.3: a 152-byte message
    return hmac_sha256(psk, msg)


def schedule(
    psk: bytes,
    transcript: bytes,
    client_nonce: bytes,
    bank_nonce: bytes,
    dh_ee: bytes,
    dh_es: bytes,
) -> dict[str, Any]:
    """§6.2-§6.5 from the transcript input and the two X25519 results."""
    th = hashlib.sha256(transcript).digest()  # §6.2
    ms = master_secret(psk, client_nonce, bank_nonce, dh_ee, dh_es)  # §6.3
    prk = hmac_sha256(th, ms)  # §6.4: HKDF-Extract(salt = th, IKM = MS) = HMAC(th, MS)
    keys = {name: hkdf_expand_32(prk, info) for name, info in KEY_LABELS.items()}  # §6.4
    return {
        "transcript_hash": th,
        "master_secret": ms,
        "prk": prk,
        "keys": keys,
        "server_finished": hmac_sha256(keys["server_finished"], th),  # §6.5
        "client_finished": hmac_sha256(keys["client_finished"], th),  # §6.5
    }


def terminal_id_keys(dh_es: bytes, client_share: bytes, bank_static_public: bytes) -> dict:
    """§6.7: 64 bytes of HKDF-SHA256(salt = label, IKM = dh_es,
    info = client_share || bank_static_public); K_id_enc the first 32, K_id_mac the last 32."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=64,
        salt=LABEL_TERMINAL_ID,
        info=client_share + bank_static_public,
    ).derive(dh_es)
    return {"enc": okm[:32], "mac": okm[32:]}


def _cbc(key: bytes, data: bytes, encrypt: bool) -> bytes:
    """AES-256-CBC with the all-zero IV of §6.7, no padding here (the caller pads)."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def seal_terminal_id(keys: dict, terminal_id: str) -> dict[str, bytes]:
    """§6.7: the id, zero bytes to 64, PKCS#7 (a full block of 0x10), AES-256-CBC under
    K_id_enc with a zero IV (80 bytes); then HMAC(K_id_mac, label || ciphertext)."""
    plaintext = terminal_id.encode("ascii").ljust(64, b"\0")
    ciphertext = _cbc(keys["enc"], plaintext + bytes([16]) * 16, True)
    mac = hmac_sha256(keys["mac"], LABEL_SEALED_ID + ciphertext)
    return {
        "terminal_id_plaintext": plaintext,
        "terminal_id_ciphertext": ciphertext,
        "terminal_id_mac": mac,
        "sealed_terminal_id": ciphertext + mac,
    }


def open_terminal_id(keys: dict, sealed: bytes) -> str:
    """§7.5 checks 1.7-1.8: the MAC (constant time) before anything is decrypted, then the
    padding, then the plaintext: an id of §4 followed by zero bytes only."""
    ciphertext, mac = sealed[:80], sealed[80:]
    if not hmac.compare_digest(mac, hmac_sha256(keys["mac"], LABEL_SEALED_ID + ciphertext)):
        raise Refused("sealed_id", "MAC")
    padded = _cbc(keys["enc"], ciphertext, False)
    if padded[64:] != bytes([16]) * 16:
        raise Refused("sealed_id", "padding")
    plaintext = padded[:64]
    tid = plaintext.rstrip(b"\0")
    if b"\0" in tid or not _TERMINAL_ID.fullmatch(tid.decode("latin-1")):
        raise Refused("sealed_id", "plaintext")
    return tid.decode("ascii")


# ---------------------------------------------------------------------------------------------
# §15.1 The bank pin: "<bank id>:<64 lowercase hex>", never a low-order point.
# ---------------------------------------------------------------------------------------------

# The fixed secret of the low-order test (any 32 bytes will do: §15.1).
_PIN_PROBE_SECRET = bytes([0x42]) * 32


def parse_pin(text: Any) -> tuple[str, bytes]:
    """§15.1: split at the ':', a valid bank id before it, exactly 64 lowercase hex after it,
    and a public key that is not a low-order point. Returns (bank_id, bank_static_public)."""
    if type(text) is not str or ":" not in text:
        raise Refused("pin", "not <bank id>:<hex>")
    bank_id, public_hex = text.split(":", 1)
    if not _BANK_ID.fullmatch(bank_id):
        raise Refused("pin", "bank id")
    public = decode_hex(public_hex, 32, "pin")  # also refuses a second ':' and any space
    try:
        x25519_dh(_PIN_PROBE_SECRET, public)
    except Refused:
        raise Refused("pin", "low-order public key") from None
    return bank_id, public


def pin_text(bank_id: str, bank_static_public: bytes) -> str:
    """§15.1: the pin as the bank shows it."""
    return f"{bank_id}:{bank_static_public.hex()}"


# ---------------------------------------------------------------------------------------------
# §5, §7.4, §7.5 The two sides of the handshake
# ---------------------------------------------------------------------------------------------


def client_hello_text(sealed_id: bytes, client_nonce: bytes, client_share: bytes, ts: int) -> str:
    """§5.1, fields in the listed order, compact JSON; the id sealed as §6.7 says."""
    return compact_json(
        {
            "type": "client_hello",
            "version": PROTOCOL_VERSION,
            "sealed_terminal_id": sealed_id.hex(),
            "client_nonce": client_nonce.hex(),
            "client_share": client_share.hex(),
            "timestamp": ts,
        }
    )


def server_hello_text(bank_nonce: bytes, bank_share: bytes, ts: int, finished: bytes) -> str:
    """§5.2, fields in the listed order, compact JSON."""
    return compact_json(
        {
            "type": "server_hello",
            "version": PROTOCOL_VERSION,
            "bank_nonce": bank_nonce.hex(),
            "bank_share": bank_share.hex(),
            "timestamp": ts,
            "finished": finished.hex(),
        }
    )


def client_finished_text(finished: bytes) -> str:
    """§5.3."""
    return compact_json({"type": "client_finished", "finished": finished.hex()})


def bank_answer(
    client_hello: dict[str, Any],
    psk: bytes,
    bank_id: str,
    bank_static_secret: bytes,
    bank_nonce: bytes,
    bank_secret: bytes,
    bank_ts: int,
) -> dict[str, Any]:
    """§7.5 step 3: the bank's answer to a checked ClientHello, with its own static key.
    Returns the key schedule and the server_hello text."""
    client_share = decode_hex(client_hello["client_share"], 32)
    client_nonce = decode_hex(client_hello["client_nonce"], 32)
    bank_share = x25519_share(bank_secret)
    dh_ee = x25519_dh(bank_secret, client_share)  # bank ephemeral with client ephemeral
    dh_es = x25519_dh(bank_static_secret, client_share)  # bank STATIC with client ephemeral
    bank_static_public = x25519_share(bank_static_secret)
    transcript = transcript_input(
        bank_id,
        bank_static_public,
        client_hello["terminal_id"],
        client_nonce,
        client_share,
        client_hello["timestamp"],
        bank_nonce,
        bank_share,
        bank_ts,
    )
    out = schedule(psk, transcript, client_nonce, bank_nonce, dh_ee, dh_es)
    out["server_hello_message"] = server_hello_text(
        bank_nonce, bank_share, bank_ts, out["server_finished"]
    )
    return out


def derive_handshake(
    psk: bytes,
    bank_id: str,
    bank_static_secret: bytes,
    terminal_id: str,
    client_nonce: bytes,
    client_secret: bytes,
    client_ts: int,
    bank_nonce: bytes,
    bank_secret: bytes,
    bank_ts: int,
) -> dict[str, Any]:
    """Run the key schedule of §6 from the inputs, as both sides would, returning every
    intermediate value named as in the vectors file (§13.2)."""
    bank_static_public = x25519_share(bank_static_secret)  # §7.2
    client_share = x25519_share(client_secret)
    bank_share = x25519_share(bank_secret)
    # §6.3: each side computes both values from its own secrets; they must agree.
    dh_ee = x25519_dh(client_secret, bank_share)
    if not hmac.compare_digest(dh_ee, x25519_dh(bank_secret, client_share)):
        raise Refused("dh", "the two sides disagree on dh_ee")
    dh_es = x25519_dh(client_secret, bank_static_public)  # the ATM, with the pinned key
    if not hmac.compare_digest(dh_es, x25519_dh(bank_static_secret, client_share)):
        raise Refused("dh", "the two sides disagree on dh_es")
    transcript = transcript_input(
        bank_id,
        bank_static_public,
        terminal_id,
        client_nonce,
        client_share,
        client_ts,
        bank_nonce,
        bank_share,
        bank_ts,
    )
    out = schedule(psk, transcript, client_nonce, bank_nonce, dh_ee, dh_es)
    id_keys = terminal_id_keys(dh_es, client_share, bank_static_public)  # §6.7
    sealed = seal_terminal_id(id_keys, terminal_id)
    return {
        "bank_static_public": bank_static_public,
        "bank_pin": pin_text(bank_id, bank_static_public),
        "client_share": client_share,
        "bank_share": bank_share,
        "dh_ee": dh_ee,
        "dh_es": dh_es,
        "terminal_id_keys": id_keys,
        **sealed,
        "transcript": transcript,
        **out,
        "client_hello_message": client_hello_text(
            sealed["sealed_terminal_id"], client_nonce, client_share, client_ts
        ),
        "server_hello_message": server_hello_text(
            bank_nonce, bank_share, bank_ts, out["server_finished"]
        ),
        "client_finished_message": client_finished_text(out["client_finished"]),
    }


# ---------------------------------------------------------------------------------------------
# §7.3 Timestamp window, §7.4 / §7.5 receiving the handshake messages
# ---------------------------------------------------------------------------------------------


def is_fresh(t: int, now: int, max_skew_ms: int) -> bool:
    """§7.3: |t - now| <= max_skew_ms, inclusive. (Python ints cannot wrap.)"""
    return max(t, now) - min(t, now) <= max_skew_ms


def parse_handshake(text: bytes, expected_type: str, fields: list[str]) -> dict[str, Any]:
    """§7.4 step 2.1-2.2, §7.5 steps 1.1-1.2 / 4.1-4.2: size, strict JSON, exact fields."""
    if len(text) > MAX_HANDSHAKE_LEN:
        raise Refused("size")
    msg = strict_json_object(text)
    require_fields(msg, ["type"] + fields, "json")
    if msg["type"] != expected_type:  # §5: another type at this step is malformed
        raise Refused("json", "unexpected type")
    return msg


def bank_receive_client_hello(
    text: bytes, now: int, max_skew_ms: int, bank_static_secret: bytes
) -> dict[str, Any]:
    """§7.5 step 1, in the listed order, by the bank holding `bank_static_secret`. Returns the
    message with the opened id added as `terminal_id`."""
    msg = parse_handshake(
        text,
        "client_hello",
        ["version", "sealed_terminal_id", "client_nonce", "client_share", "timestamp"],
    )
    if not is_uint(msg["version"], U8_MAX) or not is_uint(msg["timestamp"], U64_MAX):
        raise Refused("json", "field type")
    if msg["version"] != PROTOCOL_VERSION:  # 1 included: no fallback (§12.1)
        raise Refused("version")
    sealed = decode_hex(msg["sealed_terminal_id"], SEALED_ID_LEN)  # check 4
    decode_hex(msg["client_nonce"], 32)
    client_share = decode_hex(msg["client_share"], 32)
    if not is_fresh(msg["timestamp"], now, max_skew_ms):  # check 5
        raise Refused("timestamp")
    dh_es = x25519_dh(bank_static_secret, client_share)  # check 6: not all zero
    keys = terminal_id_keys(dh_es, client_share, x25519_share(bank_static_secret))
    return {**msg, "terminal_id": open_terminal_id(keys, sealed)}  # checks 7 and 8


def atm_receive_server_hello(
    text: bytes,
    now: int,
    max_skew_ms: int,
    psk: bytes,
    pin: tuple[str, bytes],
    terminal_id: str,
    client_nonce: bytes,
    client_secret: bytes,
    client_ts: int,
) -> dict[str, Any]:
    """§7.4 step 2, in the listed order, with the bank pinned as `pin` = (bank id, static
    public key). Returns the ATM's key schedule on success."""
    msg = parse_handshake(
        text, "server_hello", ["version", "bank_nonce", "bank_share", "timestamp", "finished"]
    )
    if not is_uint(msg["version"], U8_MAX) or not is_uint(msg["timestamp"], U64_MAX):
        raise Refused("json", "field type")
    if msg["version"] != PROTOCOL_VERSION:  # 1 included: no fallback (§12.1)
        raise Refused("version")
    bank_nonce = decode_hex(msg["bank_nonce"], 32)
    bank_share = decode_hex(msg["bank_share"], 32)
    finished = decode_hex(msg["finished"], 32)
    if not is_fresh(msg["timestamp"], now, max_skew_ms):
        raise Refused("timestamp")
    bank_id, bank_static_public = pin
    dh_ee = x25519_dh(client_secret, bank_share)  # check 6: both non-zero
    dh_es = x25519_dh(client_secret, bank_static_public)
    client_share = x25519_share(client_secret)
    transcript = transcript_input(
        bank_id,
        bank_static_public,
        terminal_id,
        client_nonce,
        client_share,
        client_ts,
        bank_nonce,
        bank_share,
        msg["timestamp"],
    )
    out = schedule(psk, transcript, client_nonce, bank_nonce, dh_ee, dh_es)
    if not hmac.compare_digest(finished, out["server_finished"]):  # check 8
        raise Refused("finished")
    return out


def bank_receive_client_finished(
    text: bytes, k_cfin: bytes, th: bytes, terminal_known: bool
) -> None:
    """§7.5 step 4: both conditions evaluated, no short-circuit."""
    msg = parse_handshake(text, "client_finished", ["finished"])
    finished = decode_hex(msg["finished"], 32)
    mac_ok = hmac.compare_digest(finished, hmac_sha256(k_cfin, th))
    if not (mac_ok & terminal_known):
        raise Refused("finished")


# ---------------------------------------------------------------------------------------------
# §15.2 The auth file, §15.3 enrollment links
# ---------------------------------------------------------------------------------------------


def parse_auth_file(text: str) -> tuple[str, bytes, tuple[str, bytes]]:
    """§15.2: (terminal_id, psk, pin). A file without `bank` was made for version 1."""
    if len(text.encode("utf-8")) > 4096:
        raise Refused("auth", "larger than 4096 bytes")
    obj = strict_json_object(text.strip().encode("utf-8"), "auth")
    if "bank" not in obj and set(obj) == {"terminal_id", "psk"}:
        raise Refused("auth v1", "no bank pin: enroll this terminal again")
    require_fields(obj, ["terminal_id", "psk", "bank"], "auth")
    if type(obj["terminal_id"]) is not str or not _TERMINAL_ID.fullmatch(obj["terminal_id"]):
        raise Refused("auth", "terminal_id")
    return obj["terminal_id"], decode_hex(obj["psk"], 32, "auth"), parse_pin(obj["bank"])


def auth_file_text(terminal_id: str, psk: bytes, pin: str) -> str:
    """§15.2: what the bank writes."""
    return compact_json({"terminal_id": terminal_id, "psk": psk.hex(), "bank": pin}) + "\n"


def parse_link(link: str) -> tuple[str, bytes, tuple[str, bytes]]:
    """§15.3: a whole link or its fragment; exactly terminal=, key=, bank=, in that order."""
    fragment = link.strip().split("#", 1)[-1]
    parts = fragment.split("&")
    names = ["terminal", "key", "bank"]
    if len(parts) != 3 or any(not p.startswith(n + "=") for p, n in zip(parts, names)):
        raise Refused("link", "not terminal=…&key=…&bank=…")
    terminal, key, bank = (p.split("=", 1)[1] for p in parts)
    if not _TERMINAL_ID.fullmatch(terminal):
        raise Refused("link", "terminal")
    return terminal, decode_hex(key, 32, "link"), parse_pin(bank)


# ---------------------------------------------------------------------------------------------
# §8 Record layer
# ---------------------------------------------------------------------------------------------


def record_mac_input(direction: str, seq: int, iv: bytes, ciphertext: bytes) -> bytes:
    """§8.2: label || u8(direction) || u64be(seq) || iv || ciphertext."""
    return LABEL_RECORD + bytes([DIRECTION_BYTE[direction]]) + u64be(seq) + iv + ciphertext


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def pkcs7_pad(data: bytes) -> bytes:
    """§8.3 step 5: always adds 1..16 bytes (a full block when already aligned)."""
    padder = padding.PKCS7(128).padder()
    return padder.update(data) + padder.finalize()


def pkcs7_unpad(data: bytes) -> bytes:
    """§8.4 step 7: last byte p in 1..16 and the last p bytes all equal to p; else refused."""
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError:
        raise Refused("padding") from None


def record_from_ciphertext(
    keys: dict[str, bytes], direction: str, seq: int, iv: bytes, ciphertext: bytes
) -> tuple[bytes, bytes, str]:
    """§8.3 steps 6-7: MAC a ciphertext and build the wire text. Returns (mac_input, mac, wire)."""
    mac_input = record_mac_input(direction, seq, iv, ciphertext)
    mac = hmac_sha256(keys[f"{direction}_mac"], mac_input)
    wire = compact_json(
        {"seq": seq, "iv": iv.hex(), "ciphertext": ciphertext.hex(), "mac": mac.hex()}
    )
    return mac_input, mac, wire


def padded_len(n: int, unit: int) -> int:
    """§8.6: L = min(ceil(n / U) * U, MAX_PLAINTEXT_LEN)."""
    return min(-(-n // unit) * unit, MAX_PLAINTEXT_LEN)


def padding_unit(direction: str, body_type: str, answers: str | None) -> int | None:
    """§8.6: the unit a plaintext is padded with: a request that carries a credential, and
    the response to one (`answers` is the type of the request it answers), whatever it is."""
    if direction == "c2s":
        return CREDENTIAL_REQUEST_LEN if body_type in CREDENTIAL_REQUESTS else None
    return CREDENTIAL_REPLY_LEN if answers in CREDENTIAL_REQUESTS else None


def plaintext_of(message: dict[str, Any], direction: str, answers: str | None) -> bytes:
    """§9.2 and §8.6: the compact JSON of a plaintext, then, if §8.6 says so, spaces (0x20)
    after the object up to the padded length."""
    body = message["request" if direction == "c2s" else "response"]
    text = compact_json(message).encode("utf-8")
    unit = padding_unit(direction, body["type"], answers)
    if unit is None:
        return text
    return text + b" " * (padded_len(len(text), unit) - len(text))


def seal(
    keys: dict[str, bytes], direction: str, seq: int, iv: bytes, plaintext: bytes
) -> dict[str, Any]:
    """§8.3 with a given IV (the IV is an input of the vectors). Size check of step 2 included."""
    if len(plaintext) > MAX_PLAINTEXT_LEN:
        raise Refused("seal", "message too large")
    ciphertext = aes_cbc_encrypt(keys[f"{direction}_enc"], iv, pkcs7_pad(plaintext))
    mac_input, mac, wire = record_from_ciphertext(keys, direction, seq, iv, ciphertext)
    return {"ciphertext": ciphertext, "mac_input": mac_input, "mac": mac, "wire": wire}


class RecordReceiver:
    """One side's receiving half of an established session (§8.4).

    `peer_direction` is the direction of the records it receives: the bank receives "c2s"
    (and expects requests), the ATM receives "s2c" (and expects responses)."""

    def __init__(self, keys: dict[str, bytes], peer_direction: str, max_skew_ms: int):
        self.peer_direction = peer_direction
        self.enc_key = keys[f"{peer_direction}_enc"]
        self.mac_key = keys[f"{peer_direction}_mac"]
        self.body_field, self.variants = (
            ("request", REQUESTS) if peer_direction == "c2s" else ("response", RESPONSES)
        )
        self.max_skew_ms = max_skew_ms
        self.expected = 0  # the receive counter of the peer's direction (§8.5)
        self.failed = False

    def open(self, wire: bytes, now: int) -> tuple[bytes, dict[str, Any]]:
        """Open one record; any failure fails the session for good (§8.4, last paragraphs)."""
        try:
            return self._open(wire, now)
        except Refused:
            self.failed = True
            raise

    def _open(self, wire: bytes, now: int) -> tuple[bytes, dict[str, Any]]:
        # Step 1: a failed session stays failed.
        if self.failed:
            raise Refused("1 session failed")
        # Step 2: size of the UTF-8 payload.
        if len(wire) > MAX_RECORD_LEN:
            raise Refused("2 size")
        # Step 3: a JSON object with exactly the four fields, seq a u64, the others strings.
        record = strict_json_object(wire, "3 json")
        require_fields(record, ["seq", "iv", "ciphertext", "mac"], "3 json")
        if not is_uint(record["seq"], U64_MAX) or not all(
            type(record[k]) is str for k in ("iv", "ciphertext", "mac")
        ):
            raise Refused("3 json", "field type")
        # Step 4: strictly the next sequence number, and below MAX_RECORDS_PER_DIRECTION (2^32).
        seq = record["seq"]
        if seq != self.expected or seq >= MAX_RECORDS_PER_DIRECTION:
            raise Refused("4 seq", f"got {seq}, expected {self.expected}")
        # Step 5: strict lowercase hex with exact lengths.
        iv = decode_hex(record["iv"], 16, "5 hex")
        mac = decode_hex(record["mac"], 32, "5 hex")
        ciphertext = decode_hex(record["ciphertext"], None, "5 hex")
        if not (0 < len(ciphertext) <= MAX_CIPHERTEXT_LEN and len(ciphertext) % 16 == 0):
            raise Refused("5 hex", "ciphertext length")
        # Step 6: the MAC, with the peer's key and direction byte, all 32 bytes in constant
        # time, BEFORE anything is decrypted (encrypt-then-MAC).
        expected_mac = hmac_sha256(
            self.mac_key, record_mac_input(self.peer_direction, seq, iv, ciphertext)
        )
        if not hmac.compare_digest(mac, expected_mac):
            raise Refused("6 mac")
        # Step 7: decrypt and strictly unpad.
        plaintext = pkcs7_unpad(aes_cbc_decrypt(self.enc_key, iv, ciphertext))
        # Step 8: consume the sequence number.
        self.expected = seq + 1
        # Step 9: plaintext size and schema: {"ts":..,"request":{..}} or {"ts":..,"response":{..}}.
        if len(plaintext) > MAX_PLAINTEXT_LEN:
            raise Refused("9 schema", "plaintext too large")
        try:
            message = strict_json_object(plaintext, "9 schema")
            require_fields(message, ["ts", self.body_field], "9 schema")
            if not is_uint(message["ts"], U64_MAX):
                raise Refused("9 schema", "ts")
            check_tagged(message[self.body_field], self.variants, OPTIONAL[self.body_field])
        except Refused as e:
            raise Refused("9 schema", str(e)) from None
        # Step 10: the timestamp is fresh against the receiver's clock.
        if not is_fresh(message["ts"], now, self.max_skew_ms):
            raise Refused("10 ts")
        return plaintext, message


# ---------------------------------------------------------------------------------------------
# Test harness: groups of checks, one line per group, one summary line at the end.
# ---------------------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self._group: str | None = None
        self._g_pass = self._g_fail = 0
        self._failures: list[str] = []

    def begin(self, name: str) -> None:
        self._group, self._g_pass, self._g_fail, self._failures = name, 0, 0, []

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        if ok:
            self._g_pass += 1
        else:
            self._g_fail += 1
            self._failures.append(f"    FAIL {label}" + (f": {detail}" if detail else ""))

    def equal(self, label: str, got: Any, want: Any) -> None:
        self.check(label, got == want, f"got {got!r}, want {want!r}")

    def refused(
        self, label: str, action: Callable[[], Any], step_prefix: str | None = None
    ) -> None:
        """`action` must raise Refused (and, if given, at the step starting with step_prefix)."""
        try:
            action()
        except Refused as e:
            ok = step_prefix is None or e.step.startswith(step_prefix)
            self.check(label, ok, f"refused at {e.step!r}, expected {step_prefix!r}")
            return
        self.check(label, False, "was accepted")

    def end(self) -> None:
        status = "ok" if self._g_fail == 0 else "FAILED"
        print(f"[{status}] {self._group}: {self._g_pass} passed, {self._g_fail} failed")
        for line in self._failures:
            print(line)
        self.passed += self._g_pass
        self.failed += self._g_fail


def hexes(value: Any) -> Any:
    """Turn the bytes in a derived-values dict into hex, for comparing with the file."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: hexes(v) for k, v in value.items()}
    return value


INPUT_FIELDS = {
    "psk",
    "bank_id",
    "bank_static_secret",
    "terminal_id",
    "client_nonce",
    "client_x25519_secret",
    "client_timestamp",
    "bank_nonce",
    "bank_x25519_secret",
    "bank_timestamp",
    "max_skew_ms",
}
HANDSHAKE_FIELDS = {
    "bank_static_public",
    "bank_pin",
    "client_share",
    "bank_share",
    "dh_ee",
    "dh_es",
    "terminal_id_keys",
    "terminal_id_plaintext",
    "terminal_id_ciphertext",
    "terminal_id_mac",
    "sealed_terminal_id",
    "transcript",
    "transcript_hash",
    "master_secret",
    "prk",
    "keys",
    "server_finished",
    "client_finished",
    "client_hello_message",
    "server_hello_message",
    "client_finished_message",
}


def derive_from_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    return derive_handshake(
        bytes.fromhex(inputs["psk"]),
        inputs["bank_id"],
        bytes.fromhex(inputs["bank_static_secret"]),
        inputs["terminal_id"],
        bytes.fromhex(inputs["client_nonce"]),
        bytes.fromhex(inputs["client_x25519_secret"]),
        inputs["client_timestamp"],
        bytes.fromhex(inputs["bank_nonce"]),
        bytes.fromhex(inputs["bank_x25519_secret"]),
        inputs["bank_timestamp"],
    )


def check_handshake(
    rep: Report, inputs: dict[str, Any], expected: dict[str, Any]
) -> dict[str, Any]:
    rep.begin("§5-§6 handshake values recomputed from inputs")
    # §13.2: exactly the documented fields (v1's `dh_shared_secret` is now `dh_ee`).
    rep.equal("inputs fields are those of §13.2", sorted(inputs), sorted(INPUT_FIELDS))
    rep.equal("handshake fields are those of §13.2", sorted(expected), sorted(HANDSHAKE_FIELDS))
    rep.equal("keys fields are those of §13.2", sorted(expected["keys"]), sorted(KEY_LABELS))
    rep.check("bank_id is a valid bank id (§4)", bool(_BANK_ID.fullmatch(inputs["bank_id"])))
    derived = derive_from_inputs(inputs)
    got = hexes(derived)
    for name in sorted(HANDSHAKE_FIELDS - {"keys", "terminal_id_keys"}):
        rep.equal(name, got[name], expected[name])
    rep.equal("terminal_id_keys fields (§13.2)", sorted(expected["terminal_id_keys"]),
              ["enc", "mac"])
    for name in ("enc", "mac"):
        rep.equal(f"terminal_id_keys.{name}", got["terminal_id_keys"][name],
                  expected["terminal_id_keys"][name])
    # §6.7: the plaintext is the id then zeros, 64 bytes; the ciphertext 80; the MAC 32.
    rep.equal("sealed id lengths", [len(derived[k]) for k in (
        "terminal_id_plaintext", "terminal_id_ciphertext", "terminal_id_mac")], [64, 80, 32])
    for name in KEY_LABELS:
        rep.equal(f"keys.{name}", got["keys"][name], expected["keys"][name])
    # §15.1: the pin in the file parses, and names the bank of the inputs.
    try:
        rep.equal(
            "bank_pin parses to (bank_id, bank_static_public)",
            parse_pin(expected["bank_pin"]),
            (inputs["bank_id"], derived["bank_static_public"]),
        )
    except Refused as e:
        rep.check("bank_pin parses", False, str(e))
    # §6.2: the transcript input is 200 + len(bank_id) + len(terminal_id) bytes.
    rep.equal(
        "transcript length",
        len(derived["transcript"]),
        200 + len(inputs["bank_id"].encode()) + len(inputs["terminal_id"].encode()),
    )
    # §6.3: dh_ee and dh_es are different values (ephemeral vs static peer).
    rep.check("dh_ee differs from dh_es", derived["dh_ee"] != derived["dh_es"])
    # §6.4's remark: for L = 32, HKDF-Expand(PRK, info, 32) = HMAC(PRK, info || 0x01).
    for name, info in KEY_LABELS.items():
        rep.equal(
            f"§6.4 shortcut agrees for {name}",
            hmac_sha256(derived["prk"], info + b"\x01"),
            derived["keys"][name],
        )
    rep.end()
    return derived


# Points of small order (§15.1), 32 bytes little-endian: 0, 1, the two points of order 8,
# and p - 1, p, p + 1 (p = 2^255 - 19), all of which X25519 with any clamped secret maps to 0.
LOW_ORDER_POINTS = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes([0xEC]) + bytes([0xFF]) * 30 + bytes([0x7F]),
    bytes([0xED]) + bytes([0xFF]) * 30 + bytes([0x7F]),
    bytes([0xEE]) + bytes([0xFF]) * 30 + bytes([0x7F]),
]


def check_handshake_receivers(
    rep: Report, inputs: dict[str, Any], hs: dict[str, Any], derived: dict[str, Any]
) -> None:
    """Receive the three handshake messages from the file as the peer would (§7.4, §7.5)."""
    rep.begin("§7 handshake messages received and verified (+ negative cases)")
    skew = inputs["max_skew_ms"]
    psk = bytes.fromhex(inputs["psk"])
    tid = inputs["terminal_id"]
    cn = bytes.fromhex(inputs["client_nonce"])
    cs = bytes.fromhex(inputs["client_x25519_secret"])
    bank_id = inputs["bank_id"]
    bank_static = bytes.fromhex(inputs["bank_static_secret"])
    bn = bytes.fromhex(inputs["bank_nonce"])
    bs = bytes.fromhex(inputs["bank_x25519_secret"])
    ct, bt = inputs["client_timestamp"], inputs["bank_timestamp"]
    ch, sh, cf = (
        hs[k].encode()
        for k in ("client_hello_message", "server_hello_message", "client_finished_message")
    )
    th, keys = derived["transcript_hash"], derived["keys"]
    pin = parse_pin(hs["bank_pin"])  # what the ATM was enrolled with (§15.1)

    def ok(label: str, action: Callable[[], Any]) -> None:
        try:
            action()
            rep.check(label, True)
        except Refused as e:
            rep.check(label, False, f"refused: {e}")

    def atm_reads(text: bytes, the_pin: tuple[str, bytes] = pin, key: bytes = psk):
        return lambda: atm_receive_server_hello(text, bt, skew, key, the_pin, tid, cn, cs, ct)

    # GUESS: the file does not record the receivers' clocks; the bank's clock on receiving
    # client_hello is taken as its own server_hello timestamp, the ATM's clock on receiving
    # server_hello as that same timestamp (no latency).
    def bank_reads(text: bytes, now: int = bt, static: bytes = bank_static):
        return lambda: bank_receive_client_hello(text, now, skew, static)

    ok("bank accepts client_hello", bank_reads(ch))
    ok("ATM accepts server_hello (bank Finished verified)", atm_reads(sh))
    ok(
        "bank accepts client_finished (ATM Finished verified)",
        lambda: bank_receive_client_finished(cf, keys["client_finished"], th, True),
    )
    # §7.5 step 3: the bank's own answer, from the received ClientHello and its static key.
    hello = bank_reads(ch)()
    rep.equal("bank opens the sealed id to the terminal's (§6.7)", hello["terminal_id"], tid)
    answer = bank_answer(hello, psk, bank_id, bank_static, bn, bs, bt)
    rep.equal(
        "bank's answer to client_hello is the file's server_hello",
        answer["server_hello_message"],
        hs["server_hello_message"],
    )

    # --- §11.3 authentication of the bank: the terminal's PSK without the pinned key --------
    impostors = [
        ("same bank id, another static key", bank_id, bytes([0x25]) * 32),
        ("its own bank id and static key", "impostor-bank", bytes([0x24]) * 32),
    ]
    for what, fake_id, fake_static in impostors:
        fake = bank_answer(hello, psk, fake_id, fake_static, bn, bs, bt)
        fake_sh = fake["server_hello_message"].encode()
        rep.refused(
            f"bank with the terminal's PSK but {what}: its server_hello fails the ATM's Finished",
            atm_reads(fake_sh),
            "finished",
        )
        # The same answer verifies for an ATM that pinned the impostor: the failure above is
        # the pin's doing, not a bug of the impostor's computation.
        ok(
            f"... and is accepted by an ATM that pinned that bank ({what})",
            atm_reads(fake_sh, (fake_id, x25519_share(fake_static))),
        )
    rep.refused(
        "genuine server_hello checked against a pin naming another bank id (same key) refused",
        atm_reads(sh, ("another-bank", pin[1])),
        "finished",
    )
    rep.refused(
        "server_hello checked with a wrong PSK (right pin) refused",
        atm_reads(sh, key=bytes(32)),
        "finished",
    )

    # --- §12.1 version 1 (and any other version) refused, no fallback ---------------------
    for version in (1, 0, 3, 255):
        ch_v = compact_json({**json.loads(ch), "version": version}).encode()
        rep.refused(
            f"client_hello with version {version} refused",
            bank_reads(ch_v),
            "version",
        )
        sh_v = compact_json({**json.loads(sh), "version": version}).encode()
        rep.refused(f"server_hello with version {version} refused", atm_reads(sh_v), "version")

    # --- §15.1 low-order pins, §7 low-order shares ------------------------------------------
    for point in LOW_ORDER_POINTS:
        rep.refused(
            f"pin with low-order key {point.hex()[:8]}… refused",
            lambda point=point: parse_pin(pin_text(bank_id, point)),
            "pin",
        )
        rep.refused(
            f"ATM without the pin check: dh_es with {point.hex()[:8]}… is all zero, refused",
            atm_reads(sh, (bank_id, point)),
            "dh",
        )
    for bad_pin in [
        hs["bank_pin"].upper(),
        hs["bank_pin"] + " ",
        " " + hs["bank_pin"],
        hs["bank_pin"][:-2],
        hs["bank_pin"] + ":00",
        derived["bank_static_public"].hex(),
        ":" + derived["bank_static_public"].hex(),
        "a" * 65 + ":" + derived["bank_static_public"].hex(),
        "bank.1:" + derived["bank_static_public"].hex(),
    ]:
        rep.refused(
            f"malformed pin {bad_pin[:20]!r}… refused", lambda p=bad_pin: parse_pin(p), "pin"
        )
    ok(
        "pin with a 64-character bank id accepted",
        lambda: parse_pin("A-_9" * 16 + ":" + derived["bank_static_public"].hex()),
    )
    rep.refused(
        "low-order bank_share (all-zero dh_ee) refused", lambda: x25519_dh(cs, bytes(32)), "dh"
    )
    low_order = compact_json({**json.loads(sh), "bank_share": "00" * 32}).encode()
    rep.refused("server_hello with a low-order bank_share refused", atm_reads(low_order), "dh")
    low_hello = {**hello, "client_share": "00" * 32}
    rep.refused(
        "bank answering a low-order client_share refuses (dh_ee and dh_es all zero)",
        lambda: bank_answer(low_hello, psk, bank_id, bank_static, bn, bs, bt),
        "dh",
    )

    # --- tampering, other checks ---------------------------------------------------------------
    flipped = bytearray(derived["server_finished"])
    flipped[0] ^= 1
    bad_fin = compact_json({**json.loads(sh), "finished": flipped.hex()}).encode()
    rep.refused(
        "server_hello with one Finished bit flipped refused", atm_reads(bad_fin), "finished"
    )
    later_ts = compact_json({**json.loads(sh), "timestamp": bt + 1}).encode()
    rep.refused(
        "server_hello with a changed timestamp (transcript) refused",
        atm_reads(later_ts),
        "finished",
    )
    rep.refused(
        "client_finished from an unknown terminal refused",
        lambda: bank_receive_client_finished(cf, keys["client_finished"], th, False),
        "finished",
    )
    rep.refused(
        "client_hello with uppercase hex nonce refused",
        bank_reads(
            ch.replace(inputs["client_nonce"].encode(), inputs["client_nonce"].upper().encode())
        ),
        "hex",
    )
    rep.refused(
        "client_hello 30001 ms stale refused",
        bank_reads(ch, ct + skew + 1),
        "timestamp",
    )
    ok(
        "client_hello exactly 30000 ms old accepted (inclusive)",
        bank_reads(ch, ct + skew),
    )
    rep.refused(
        "client_hello with an unknown field refused",
        bank_reads(ch[:-1] + b',"x":1}'),
        "json",
    )
    rep.refused(
        "client_hello carrying a bank pin field refused (the pin is never sent, §5)",
        bank_reads(ch[:-1] + b',"bank":"' + hs["bank_pin"].encode() + b'"}'),
        "json",
    )
    # --- §6.7 the sealed terminal id ------------------------------------------------------
    rep.check("the terminal id does not appear in the client_hello", tid.encode() not in ch)
    rep.check("... nor its hex", tid.encode().hex().encode() not in ch)
    sealed_hex = json.loads(ch)["sealed_terminal_id"]
    for at, what in [(0, "first ciphertext"), (79, "last ciphertext"), (80, "first MAC"),
                     (111, "last MAC")]:
        bad = bytearray.fromhex(sealed_hex)
        bad[at] ^= 1
        bad_ch = compact_json({**json.loads(ch), "sealed_terminal_id": bad.hex()}).encode()
        rep.refused(f"client_hello with a {what} byte of the sealed id flipped refused",
                    bank_reads(bad_ch), "sealed_id")
    rep.refused(
        "client_hello opened by a bank with another static key refused (sealed for the pin)",
        bank_reads(ch, static=bytes([0x25]) * 32),
        "sealed_id",
    )
    clear = json.loads(ch)
    del clear["sealed_terminal_id"]
    clear_ch = compact_json({"type": "client_hello", "version": 2, "terminal_id": tid,
                             **{k: v for k, v in clear.items() if k not in ("type", "version")}})
    rep.refused("client_hello with the id in clear (`terminal_id`) refused",
                bank_reads(clear_ch.encode()), "json")
    rep.refused(
        "client_hello with a sealed id one byte short refused",
        bank_reads(compact_json({**json.loads(ch), "sealed_terminal_id": sealed_hex[2:]})
                   .encode()),
        "hex",
    )
    rep.refused(
        "client_hello with a low-order client_share refused at the bank (dh_es all zero)",
        bank_reads(compact_json({**json.loads(ch), "client_share": "00" * 32}).encode()),
        "dh",
    )
    # The sealed id of any id is 112 bytes: ids of 1 and 64 characters seal alike, and open.
    id_keys = derived["terminal_id_keys"]
    for other in ("a", "A-_9" * 16):
        s = seal_terminal_id(id_keys, other)["sealed_terminal_id"]
        rep.equal(f"an id of {len(other)} characters seals to 112 bytes", len(s), SEALED_ID_LEN)
        rep.equal(f"... and opens to itself", open_terminal_id(id_keys, s), other)
    # A MAC over a plaintext that is not an id then zeros is refused after the MAC.
    for what, plain in [("a NUL inside the id", b"atm\0" + b"1" + bytes(59)),
                        ("a byte after the zeros", b"atm-0001" + bytes(55) + b"x"),
                        ("no id", bytes(64))]:
        ct = _cbc(id_keys["enc"], plain + bytes([16]) * 16, True)
        forged = ct + hmac_sha256(id_keys["mac"], LABEL_SEALED_ID + ct)
        rep.refused(f"sealed plaintext with {what} refused",
                    lambda f=forged: open_terminal_id(id_keys, f), "sealed_id")
    rep.refused(
        "record in place of client_finished refused",
        lambda: bank_receive_client_finished(
            b'{"seq":0,"iv":"","ciphertext":"","mac":""}', keys["client_finished"], th, True
        ),
        "json",
    )
    rep.end()


def check_enrollment_formats(rep: Report, inputs: dict[str, Any], hs: dict[str, Any]) -> None:
    """§15.2, §15.3 with the credentials of the vectors: what the bank writes parses back;
    version 1 credentials (no pin) are refused."""
    rep.begin("§15 auth file and enrollment link formats")
    tid, psk = inputs["terminal_id"], bytes.fromhex(inputs["psk"])
    pin_str = hs["bank_pin"]
    want = (tid, psk, parse_pin(pin_str))
    auth = auth_file_text(tid, psk, pin_str)
    rep.equal("auth file is one line and a newline", auth.count("\n"), 1)
    rep.equal("auth file parses back", parse_auth_file(auth), want)
    reordered = compact_json({"bank": pin_str, "psk": psk.hex(), "terminal_id": tid})
    rep.equal("auth file keys in another order accepted", parse_auth_file(reordered), want)
    v1 = compact_json({"terminal_id": tid, "psk": psk.hex()}) + "\n"
    rep.refused("version 1 auth file (no bank) refused", lambda: parse_auth_file(v1), "auth v1")
    for what, bad in [
        ("unknown field", auth[:-2] + ',"x":1}'),
        ("duplicate bank", auth[:-2] + f',"bank":"{pin_str}"}}'),
        ("bank null", compact_json({"terminal_id": tid, "psk": psk.hex(), "bank": None})),
        ("uppercase psk", auth.replace(psk.hex(), psk.hex().upper())),
        ("low-order bank key", auth.replace(pin_str.split(":")[1], "00" * 32)),
        ("a JSON array", json.dumps([tid, psk.hex(), pin_str])),
    ]:
        rep.refused(f"auth file with {what} refused", lambda bad=bad: parse_auth_file(bad))
    for page in ("/", "/console"):
        link = f"http://127.0.0.1:8765{page}#terminal={tid}&key={psk.hex()}&bank={pin_str}"
        rep.equal(f"link to {page} parses", parse_link(link), want)
    frag = f"terminal={tid}&key={psk.hex()}&bank={pin_str}"
    rep.refused(
        "version 1 link (no bank=) refused",
        lambda: parse_link(f"#terminal={tid}&key={psk.hex()}"),
        "link",
    )
    for what, bad in [
        ("fields out of order", f"#key={psk.hex()}&terminal={tid}&bank={pin_str}"),
        ("an extra field", f"#{frag}&x=1"),
        ("a space in the pin", f"#{frag.replace('bank=', 'bank= ')}"),
        ("a low-order pin", f"#{frag.replace(pin_str.split(':')[1], '00' * 32)}"),
    ]:
        rep.refused(f"link with {what} refused", lambda bad=bad: parse_link(bad))
    rep.end()


def check_records(
    rep: Report, inputs: dict[str, Any], records: list[dict[str, Any]], keys: dict[str, bytes]
) -> None:
    # --- re-seal every record (§8.2, §8.3) and compare ---------------------------------
    rep.begin(f"§8.2-§8.3 {len(records)} records re-sealed (ciphertext, mac_input, mac, wire)")
    counters = {"c2s": 0, "s2c": 0}
    for i, r in enumerate(records):
        d = r["direction"]
        rep.equal(f"record {i} seq is the per-direction counter", r["seq"], counters[d])
        counters[d] += 1
        sealed = seal(keys, d, r["seq"], bytes.fromhex(r["iv"]), r["plaintext"].encode("utf-8"))
        rep.equal(f"record {i} ciphertext", sealed["ciphertext"].hex(), r["ciphertext"])
        rep.equal(f"record {i} mac_input", sealed["mac_input"].hex(), r["mac_input"])
        rep.equal(f"record {i} mac", sealed["mac"].hex(), r["mac"])
        rep.equal(f"record {i} wire", sealed["wire"], r["wire"])
    # §8.1/§9.2: records alternate request, response.
    rep.equal(
        "directions alternate c2s, s2c",
        [r["direction"] for r in records],
        ["c2s", "s2c"] * (len(records) // 2),
    )
    rep.end()

    # --- open every wire as the receiver would (§8.4) -----------------------------------
    rep.begin(f"§8.4 {len(records)} records opened by independent receivers")
    skew = inputs["max_skew_ms"]
    bank = RecordReceiver(keys, "c2s", skew)  # receives the ATM's requests
    atm = RecordReceiver(keys, "s2c", skew)  # receives the bank's responses
    answers: str | None = None  # the type of the request the next response answers (§9.5)
    for i, r in enumerate(records):
        receiver = bank if r["direction"] == "c2s" else atm
        # GUESS: the file gives no receive times, so the receiver's clock is taken to read
        # the sender's `ts` (an instantaneous network); the window is tested separately.
        now = json.loads(r["plaintext"])["ts"]
        try:
            plaintext, message = receiver.open(r["wire"].encode("utf-8"), now)
        except Refused as e:
            rep.check(f"record {i} opened", False, f"refused at {e}")
            continue
        rep.equal(f"record {i} plaintext bytes", plaintext, r["plaintext"].encode("utf-8"))
        rep.equal(f"record {i} parsed plaintext", message, json.loads(r["plaintext"]))
        # §3.3, §8.6: the sender emitted compact JSON in the listed key order, then the
        # padding §8.6 asks for (spaces after the object), and nothing else.
        rep.equal(
            f"record {i} plaintext is compact, in spec key order, padded as §8.6 says",
            plaintext_of(message, r["direction"], answers),
            r["plaintext"].encode("utf-8"),
        )
        if r["direction"] == "c2s":
            answers = message["request"]["type"]
    rep.equal("bank receive counter at the end", bank.expected, counters["c2s"])
    rep.equal("ATM receive counter at the end", atm.expected, counters["s2c"])
    rep.end()

    # --- negative checks through the receivers --------------------------------------------
    rep.begin("§8.4 tampered / replayed / reflected / malformed records refused")

    def fresh_receiver(direction: str, seq: int) -> RecordReceiver:
        """A receiver in the state it has just before record `seq` of `direction`."""
        rx = RecordReceiver(keys, direction, skew)
        rx.expected = seq
        return rx

    def rewrite(r: dict[str, Any], **changes: Any) -> bytes:
        return compact_json({**json.loads(r["wire"]), **changes}).encode()

    def flip_hex(text: str, byte_index: int) -> str:
        raw = bytearray(bytes.fromhex(text))
        raw[byte_index] ^= 0x01
        return raw.hex()

    picks = [0, 1, len(records) - 2, len(records) - 1]  # first and last of each direction
    for i in picks:
        r = records[i]
        d, seq = r["direction"], r["seq"]
        now = json.loads(r["plaintext"])["ts"]

        def attempt(wire: bytes, direction: str = d, at: int = seq, clock: int = now):
            return lambda: fresh_receiver(direction, at).open(wire, clock)

        tag = f"record {i} ({d} seq {seq})"
        rep.refused(f"{tag}: IV bit flipped", attempt(rewrite(r, iv=flip_hex(r["iv"], 0))), "6")
        rep.refused(
            f"{tag}: last ciphertext bit flipped",
            attempt(rewrite(r, ciphertext=flip_hex(r["ciphertext"], -1))),
            "6",
        )
        rep.refused(f"{tag}: MAC bit flipped", attempt(rewrite(r, mac=flip_hex(r["mac"], 31))), "6")
        rep.refused(f"{tag}: seq + 1", attempt(rewrite(r, seq=seq + 1)), "4")
        rep.refused(
            f"{tag}: replayed (receiver already past it)",
            attempt(r["wire"].encode(), at=seq + 1),
            "4",
        )
        rep.refused(
            f"{tag}: seq changed and receiver moved to match (MAC covers seq)",
            attempt(rewrite(r, seq=seq + 1), at=seq + 1),
            "6",
        )
        rep.refused(
            f"{tag}: uppercase ciphertext hex",
            attempt(rewrite(r, ciphertext=r["ciphertext"].upper())),
            "5",
        )
        rep.refused(f"{tag}: uppercase MAC hex", attempt(rewrite(r, mac=r["mac"].upper())), "5")
        rep.refused(
            f"{tag}: MAC truncated to 31 bytes", attempt(rewrite(r, mac=r["mac"][:-2])), "5"
        )
        rep.refused(
            f"{tag}: ts outside the window (clock 30001 ms later)",
            attempt(r["wire"].encode(), clock=now + skew + 1),
            "10",
        )
        try:
            fresh_receiver(d, seq).open(r["wire"].encode(), now - skew)
            rep.check(f"{tag}: ts exactly 30000 ms off accepted (inclusive)", True)
        except Refused as e:
            rep.check(f"{tag}: ts exactly 30000 ms off accepted (inclusive)", False, str(e))
        if d == "s2c":
            rep.refused(
                f"{tag}: reflected to the c2s (bank) receiver",
                attempt(r["wire"].encode(), direction="c2s"),
                "6",
            )
        else:
            rep.refused(
                f"{tag}: reflected to the s2c (ATM) receiver",
                attempt(r["wire"].encode(), direction="s2c"),
                "6",
            )

    # Malformed JSON around a genuine record (first c2s record).
    r0 = records[0]
    w0 = r0["wire"]
    now0 = json.loads(r0["plaintext"])["ts"]

    def at0(wire: str | bytes) -> Callable[[], Any]:
        data = wire.encode() if isinstance(wire, str) else wire
        return lambda: fresh_receiver("c2s", 0).open(data, now0)

    rep.refused("duplicate key", at0(w0[:-1] + ',"seq":0}'), "3")
    rep.refused("unknown field", at0(w0[:-1] + ',"x":1}'), "3")
    rep.refused("missing field", at0(rewrite_without(w0, "mac")), "3")
    rep.refused("seq as 0.0", at0(w0.replace('"seq":0', '"seq":0.0')), "3")
    rep.refused('seq as "0"', at0(w0.replace('"seq":0', '"seq":"0"')), "3")
    rep.refused("seq as -0", at0(w0.replace('"seq":0', '"seq":-0')), "3")
    rep.refused("seq as false", at0(w0.replace('"seq":0', '"seq":false')), "3")
    rep.refused("seq = 2^64 (not a u64)", at0(w0.replace('"seq":0', f'"seq":{2**64}')), "3")
    rep.refused("record as a JSON array", at0(json.dumps(list(json.loads(w0).values()))), "3")
    rep.refused(
        '"0x" prefix on the IV',
        at0(w0.replace(f'"iv":"{r0["iv"]}"', f'"iv":"0x{r0["iv"][2:]}"')),
        "5",
    )
    rep.refused(
        "space inside the MAC hex",
        at0(w0.replace(r0["mac"], r0["mac"][:-2] + " " + r0["mac"][-1])),
        "5",
    )
    rep.refused("empty ciphertext", at0(w0.replace(r0["ciphertext"], "")), "5")
    rep.refused(
        "oversized message (16385 bytes)",
        at0(w0[:-1] + "," + " " * (MAX_RECORD_LEN + 1 - len(w0)) + "}"),
        "2",
    )
    rep.check(
        "insignificant whitespace accepted (§3.3)",
        _accepts(
            lambda: fresh_receiver("c2s", 0).open(
                json.dumps(json.loads(w0), indent=2).encode(), now0
            )
        ),
    )
    rep.check(
        "keys in another order accepted (§3.3)",
        _accepts(
            lambda: fresh_receiver("c2s", 0).open(
                json.dumps(dict(reversed(list(json.loads(w0).items())))).encode(), now0
            )
        ),
    )

    # A failed session stays failed (§8.4 step 1): after a bad record, a good one is refused.
    rx = fresh_receiver("c2s", 0)
    _accepts(lambda: rx.open(rewrite(r0, mac=flip_hex(r0["mac"], 0)), now0))
    rep.refused("good record after a failure refused", lambda: rx.open(w0.encode(), now0), "1")

    # §8.5: at most 2^32 records per direction. A record numbered 2^32 is refused at the
    # sequence check even by a receiver that expects it; 2^32 - 1 passes it (and then fails
    # the MAC, which covers the changed seq).
    cap = MAX_RECORDS_PER_DIRECTION
    rep.refused(
        "seq = 2^32 refused at the sequence check, even when expected",
        lambda: fresh_receiver("c2s", cap).open(rewrite(r0, seq=cap), now0),
        "4",
    )
    rep.refused(
        "seq = 2^32 - 1 passes the sequence check (then fails the MAC)",
        lambda: fresh_receiver("c2s", cap - 1).open(rewrite(r0, seq=cap - 1), now0),
        "6",
    )

    # Records with a VALID MAC but bad content (as a buggy or malicious peer holding the
    # keys could send): refused after the MAC, at padding or schema.
    iv = bytes(range(16))

    def sealed_c2s(data: bytes, raw: bool = False) -> Callable[[], Any]:
        ct = aes_cbc_encrypt(keys["c2s_enc"], iv, data if raw else pkcs7_pad(data))
        wire = record_from_ciphertext(keys, "c2s", 0, iv, ct)[2]
        return at0(wire)

    rep.refused(
        "valid MAC, bad padding (last byte 0x00)",
        sealed_c2s(b'{"ts":1700000001000}' + b"\x00" * 12, raw=True),
        "padding",
    )
    rep.refused(
        "valid MAC, bad padding (0x02 0x03)",
        sealed_c2s(b"x" * 14 + b"\x02\x03", raw=True),
        "padding",
    )
    rep.refused(
        "valid MAC, a response in the c2s direction",
        sealed_c2s(b'{"ts":1700000001000,"response":{"type":"logged_out"}}'),
        "9",
    )
    rep.refused(
        "valid MAC, field-less variant with an extra key",
        sealed_c2s(b'{"ts":1700000001000,"request":{"type":"balance","x":1}}'),
        "9",
    )
    rep.refused(
        "valid MAC, amount as a float",
        sealed_c2s(
            b'{"ts":1700000001000,"request":{"type":"deposit",'
            b'"txid":"101112131415161718191a1b1c1d1e1f","amount_cents":1.5}}'
        ),
        "9",
    )
    rep.refused(
        "valid MAC, uppercase txid",
        sealed_c2s(
            b'{"ts":1700000001000,"request":{"type":"deposit",'
            b'"txid":"101112131415161718191A1B1C1D1E1F","amount_cents":1}}'
        ),
        "9",
    )
    rep.refused(
        "valid MAC, plaintext of 8001 bytes",
        sealed_c2s(b'{"ts":1700000001000,"request":{"type":"logout"}}'.ljust(8001)),
        "9",
    )
    rep.refused("valid MAC, ts missing", sealed_c2s(b'{"request":{"type":"logout"}}'), "9")
    rep.refused(
        "valid MAC, not UTF-8",
        sealed_c2s(
            b'{"ts":1700000001000,"request":{"type":"login","username":"a","password":"\xff"}}'
        ),
        "9",
    )
    rep.end()


def longest_messages() -> dict[str, int]:
    """§8.6: the longest JSON of every padded message, from the field limits of §9.1 with a
    20-digit `ts` (the largest u64) and passwords of characters JSON writes as themselves."""
    ts = U64_MAX
    user, password, card = "z" * 250, "p" * 1024, "ab" * 32
    full_name = "\U0010ffff" * 100  # 100 characters of 4 bytes of UTF-8
    requests = {
        "register": {"username": user, "full_name": full_name, "password": password},
        "login": {"username": user, "password": password},
        "operator_login": {"username": user, "password": password},
        "change_password": {"old": password, "new": password},
        "card_login": {"username": user, "card": card},
        "open_card_account": {
            "username": user,
            "initial_cents": U64_MAX,
            "txid": "01" * 16,
            "card": card,
        },
        "reissue_card": {"old": card, "new": card},
    }
    longest_code = max(ERROR_CODES, key=len)
    responses = {
        "welcome": {
            "username": user,
            "full_name": full_name,
            "account": "9" * 32,
            "balance_cents": U64_MAX,
        },
        "account_opened": {"account": "9" * 32, "balance_cents": U64_MAX},
        "operator_welcome": {"username": user},
        "error": {"code": longest_code},
        "password_changed": {},
        "card_reissued": {},
    }
    sizes = {}
    for field, table, variants in (
        ("request", requests, REQUESTS),
        ("response", responses, RESPONSES),
    ):
        for kind, fields in table.items():
            body = {"type": kind, **fields}
            check_tagged(body, variants)  # every value within its §9.1 rule
            sizes[kind] = len(compact_json({"ts": ts, field: body}).encode("utf-8"))
    return sizes


def check_padding(
    rep: Report,
    spec_path: Path,
    inputs: dict[str, Any],
    records: list[dict[str, Any]],
    keys: dict[str, bytes],
) -> None:
    """§8.6: the padding of the records that carry credentials and of their answers."""
    rep.begin("§8.6 padding: the file's records padded from their JSON, sizes from §9.1")
    spec = spec_path.read_text(encoding="utf-8")
    section = spec[spec.index("### 8.6 ") : spec.index("## 9. ")]
    constants = spec[spec.index("## 4. ") : spec.index("## 5. ")]
    for name, value in (
        ("CREDENTIAL_REQUEST_LEN", CREDENTIAL_REQUEST_LEN),
        ("CREDENTIAL_REPLY_LEN", CREDENTIAL_REPLY_LEN),
    ):
        rep.check(f"§4 gives {name} = {value}", f"| `{name}` | `{value}` bytes |" in constants)
        printed = re.search(rf"U = {name}\s+= (\d+)", section)
        rep.equal(f"§8.6 gives {name}", int(printed.group(1)) if printed else None, value)
    rep.equal(
        "§8.6's formula, as printed",
        re.search(r"L = min\(ceil\(n / U\) · U, MAX_PLAINTEXT_LEN\)", section) is not None,
        True,
    )
    # The formula at its edges.
    rep.equal(
        "padded lengths (1, 2200, 2201, 6601, 8001 with U = 2200; 818 with U = 1024)",
        [
            padded_len(n, u)
            for n, u in [(1, 2200), (2200, 2200), (2201, 2200), (6601, 2200), (8001, 2200),
                         (818, 1024)]
        ],
        [2200, 2200, 4400, 8000, 8000, 1024],
    )

    # Every record: the plaintext is its compact JSON padded as §8.6 says, and it seals to
    # the file's wire; padded records have the fixed sizes, the others no trailing space.
    answers: str | None = None
    padded = {"c2s": [], "s2c": []}
    for i, r in enumerate(records):
        d = r["direction"]
        message = json.loads(r["plaintext"])
        body = message["request" if d == "c2s" else "response"]
        mine = plaintext_of(message, d, answers)
        unit = padding_unit(d, body["type"], answers)
        sealed = seal(keys, d, r["seq"], bytes.fromhex(r["iv"]), mine)
        rep.equal(
            f"record {i} ({body['type']}) sealed from its padded JSON", sealed["wire"], r["wire"]
        )
        if unit is None:
            rep.check(f"record {i} ({body['type']}) not padded", not r["plaintext"].endswith(" "))
        else:
            padded[d].append(body["type"])
            rep.equal(
                f"record {i} ({body['type']}) plaintext and ciphertext sizes",
                (len(mine), len(sealed["ciphertext"])),
                (unit, unit + 16 - unit % 16),
            )
        if d == "c2s":
            answers = body["type"]
    rep.check(
        "the file pads a credential request, a welcome and an error",
        bool(padded["c2s"]) and {"welcome", "error"} <= set(padded["s2c"]),
        str(padded),
    )

    # §8.6's table of longest messages, recomputed from the field limits of §9.1.
    printed: dict[str, int] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"[\d, ]+", cells[2]):
            names = re.findall(r"`([a-z_]+)`", cells[0])
            numbers = [int(n) for n in cells[2].split(",")]
            if len(names) == len(numbers):
                printed.update(zip(names, numbers))
            else:
                rep.check(f"§8.6 table row {cells[0]}", False, "names and sizes do not pair")
    sizes = longest_messages()
    rep.equal("§8.6's table names every padded message", sorted(printed), sorted(sizes))
    for kind, size in sizes.items():
        rep.equal(f"§8.6 longest {kind}", printed.get(kind), size)
    rep.check(
        "every credential request fits CREDENTIAL_REQUEST_LEN",
        all(sizes[k] <= CREDENTIAL_REQUEST_LEN for k in CREDENTIAL_REQUESTS),
    )
    rep.check(
        "every answer to one fits CREDENTIAL_REPLY_LEN",
        all(sizes[k] <= CREDENTIAL_REPLY_LEN for k in sizes if k not in CREDENTIAL_REQUESTS),
    )
    # "2200 holds any password of up to N bytes whatever its characters": the worst, a
    # change_password with two passwords of control characters (6 bytes each as \u00XX).
    m = re.search(r"holds any password of up to (\d+)\s+bytes whatever its characters", section)
    bound = int(m.group(1)) if m else 0

    def change(n: int) -> int:
        body = {"type": "change_password", "old": "\x01" * n, "new": "\x01" * n}
        return len(compact_json({"ts": U64_MAX, "request": body}).encode())

    rep.check(
        f"§8.6: a change_password with two passwords of {bound} control characters fits",
        bound > 0 and change(bound) <= CREDENTIAL_REQUEST_LEN < change(bound + 1),
        f"{change(bound)}, {change(bound + 1)}",
    )
    worst = change(1024)
    rep.check(
        f"§8.6: the true maximum ({worst} bytes) is printed and exceeds MAX_PLAINTEXT_LEN",
        f"{worst} bytes" in section and worst > MAX_PLAINTEXT_LEN,
    )

    # Receivers (§8.4 step 9, §8.6): padding is whitespace after the object; they do not
    # check it, and refuse anything else after the object.
    r0 = records[0]
    now0 = json.loads(r0["plaintext"])["ts"]
    iv = bytes(range(16))

    def opens(plaintext: bytes) -> Callable[[], Any]:
        wire = seal(keys, "c2s", 0, iv, plaintext)["wire"].encode()
        return lambda: RecordReceiver(keys, "c2s", inputs["max_skew_ms"]).open(wire, now0)

    login = r0["plaintext"].rstrip(" ").encode("utf-8")
    rep.check("an unpadded login opens (receivers do not check padding)", _accepts(opens(login)))
    rep.check(
        "a login padded to exactly MAX_PLAINTEXT_LEN opens",
        _accepts(opens(login.ljust(MAX_PLAINTEXT_LEN))),
    )
    rep.check(
        "padding of tabs and newlines opens (§3.3: insignificant whitespace)",
        _accepts(opens(login + b"\t\n\r " * 10)),
    )
    rep.refused("padding of NUL bytes refused", opens(login + b"\x00" * 16), "9")
    rep.refused("padding of U+00A0 refused", opens(login + "\u00a0".encode() * 8), "9")
    rep.refused("a second object after the padding refused", opens(login + b"  {}"), "9")
    # (Padding past MAX_PLAINTEXT_LEN: "valid MAC, plaintext of 8001 bytes" in check_records.)
    rep.end()


def check_messages_known(rep: Report, spec_path: Path) -> None:
    """§9.3, §9.4, §9.6, §9.7, §16.7: every type in the message tables and every code of §9.6
    is one this implementation knows (and no more), and every example printed there parses."""
    rep.begin("§9.3-§9.7, §16.7 every message type and error code known; examples parse")
    spec = spec_path.read_text(encoding="utf-8")
    tables: dict[str, set[str]] = {"request": set(), "response": set()}
    side: str | None = None
    in_table = False
    for line in spec[spec.index("## 9. ") : spec.index("## 10. ")].splitlines() + spec[
        spec.index("### 16.7 ") : spec.index("### 16.8 ")
    ].splitlines():
        m = re.match(r"(?:### [\d.]+ )?(Requests?|Responses?) \(", line)
        if m:
            side = "request" if m.group(1).startswith("Request") else "response"
        if line.startswith("| `type` |"):
            in_table = True
            continue
        if in_table and line.startswith("|"):
            name = re.match(r"\| `([a-z_]+)` \|", line)
            if name and side:
                tables[side].add(name.group(1))
        elif not line.startswith("|"):
            in_table = False
    rep.equal("request types in the spec's tables", sorted(tables["request"]), sorted(REQUESTS))
    rep.equal(
        "response types in the spec's tables", sorted(tables["response"]), sorted(RESPONSES)
    )
    s96 = spec[spec.index("### 9.6 ") : spec.index("### 9.7 ")]
    codes = set(re.findall(r"^\| `([a-z_]+)` \|", s96, re.M))
    rep.equal("error codes of §9.6", sorted(codes), sorted(ERROR_CODES))
    # Every example line of those sections parses as a request or as a response.
    examples = 0
    for section in (
        spec[spec.index("### 9.3 ") : spec.index("### 9.5 ")],
        spec[spec.index("### 9.7 ") : spec.index("## 10. ")],
        spec[spec.index("### 16.7 ") : spec.index("### 16.8 ")],
    ):
        for block in re.findall(r"```json\n(.*?)```", section, re.S):
            for line in block.splitlines():
                if not line.startswith('{"type":'):
                    continue
                examples += 1
                obj = strict_json_object(line.encode())
                ok = []
                for variants, optional in (
                    (REQUESTS, REQUESTS_OPTIONAL),
                    (RESPONSES, RESPONSES_OPTIONAL),
                ):
                    try:
                        check_tagged(obj, variants, optional)
                        ok.append(True)
                    except Refused:
                        ok.append(False)
                rep.check(f"example parses: {line[:70]}", any(ok))
    rep.check(f"examples found ({examples})", examples >= 30)
    rep.end()


def rewrite_without(wire: str, field: str) -> str:
    obj = json.loads(wire)
    del obj[field]
    return compact_json(obj)


def _accepts(action: Callable[[], Any]) -> bool:
    try:
        action()
        return True
    except Refused:
        return False


def _cells(section: str) -> dict[str, str]:
    """The two-column table rows `| name | value |` of a spec section, by name."""
    rows = {}
    for line in section.splitlines():
        m = re.fullmatch(r"\| (.+?) \| (.+) \|", line)
        if m and not set(m.group(1)) <= {"-"}:
            rows[m.group(1)] = m.group(2)
    return rows


def _ticked(cell: str) -> list[str]:
    """The `code` spans of a table cell."""
    return re.findall(r"`([^`]*)`", cell)


def check_worked_example(rep: Report, spec_path: Path, records: list[dict[str, Any]]) -> None:
    """§13.1: the complete example printed in the spec, recomputed from the inputs printed
    there; every hex value printed in it must be one this implementation derived. Also the
    examples of §15 (pin, auth file, link), which use the same terminal and bank."""
    rep.begin("§13.1 worked example and §15 examples in the spec recomputed")
    spec = spec_path.read_text(encoding="utf-8")
    section = spec[spec.index("### 13.1 ") : spec.index("### 13.2 ")]
    cells = _cells(section)

    def one(name: str) -> str:
        return _ticked(cells[name])[0]

    inputs = {
        "psk": one("PSK"),
        "terminal_id": one("terminal id"),
        "bank_id": one("bank id"),
        "bank_static_secret": one("bank static X25519 secret"),
        "client_nonce": one("client nonce"),
        "client_x25519_secret": one("client ephemeral X25519 secret"),
        "client_timestamp": int(one("client timestamp")),
        "bank_nonce": one("bank nonce"),
        "bank_x25519_secret": one("bank ephemeral X25519 secret"),
        "bank_timestamp": int(one("bank timestamp")),
    }
    d = derive_from_inputs(inputs)
    got = hexes(d)
    printed = {
        "bank static public key": got["bank_static_public"],
        "client share": got["client_share"],
        "bank share": got["bank_share"],
        "dh_ee": got["dh_ee"],
        "dh_es": got["dh_es"],
        "K_id_enc": got["terminal_id_keys"]["enc"],
        "K_id_mac": got["terminal_id_keys"]["mac"],
        "sealed id ciphertext": got["terminal_id_ciphertext"],
        "sealed id MAC": got["terminal_id_mac"],
        "th": got["transcript_hash"],
        "MS": got["master_secret"],
        "PRK": got["prk"],
        "K_c2s_enc": got["keys"]["c2s_enc"],
        "K_c2s_mac": got["keys"]["c2s_mac"],
        "K_s2c_enc": got["keys"]["s2c_enc"],
        "K_s2c_mac": got["keys"]["s2c_mac"],
        "K_cfin": got["keys"]["client_finished"],
        "K_sfin": got["keys"]["server_finished"],
        "bank Finished": got["server_finished"],
        "ATM Finished": got["client_finished"],
    }
    for name, value in printed.items():
        rep.equal(f"printed {name}", one(name) if name in cells else None, value)
    # RFC 7748 §6.1: the ephemeral secrets are Alice's and Bob's, so dh_ee is its K.
    rep.equal(
        "dh_ee is RFC 7748 §6.1's shared secret",
        got["dh_ee"],
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    )
    # The transcript row: its length, and its pieces (`abc…xyz` abbreviates a long one).
    tr_name = next(n for n in cells if n.startswith("transcript input"))
    rep.equal(
        "printed transcript length", tr_name, f"transcript input ({len(d['transcript'])} bytes)"
    )
    pattern = "".join(
        (
            re.escape(p.split("…")[0]) + "[0-9a-f]*" + re.escape(p.split("…")[1])
            if "…" in p
            else re.escape(p)
        )
        for p in _ticked(cells[tr_name])
    )
    rep.check("printed transcript pieces", re.fullmatch(pattern, got["transcript"]) is not None)
    # The pin and the wire messages, as printed.
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    lines = [line for block in blocks for line in block.splitlines() if line]
    rep.check("printed pin", d["bank_pin"] in lines, d["bank_pin"])
    for name in ("client_hello_message", "server_hello_message", "client_finished_message"):
        rep.check(f"printed {name}", d[name] in lines, d[name])
    # The two records: IV and ts from the inputs table, the JSON as printed, padded as §8.6
    # says (a login, and the answer to it); the wire as printed, its ciphertext shortened to
    # the first and last 32 bytes around a `…`.
    plaintexts = [line for line in lines if line.startswith('{"ts":')]
    wires = [line for line in lines if line.startswith('{"seq":')]
    sizes = re.findall(
        r"its\s+plaintext\s+is\s+the\s+(\d+)\s+bytes\s+of\s+JSON\s+below\s+followed\s+by\s+"
        r"(\d+)\s+spaces,\s+(\d+)\s+bytes\s+in\s+all\s+\(§8\.6\);\s+PKCS#7\s+adds\s+(\d+)\s+"
        r"bytes\s+of\s+`0x([0-9a-f]{2})`\s+\(ciphertext\s+(\d+)\s+bytes\)",
        section,
    )
    rep.equal("two records printed", (len(plaintexts), len(wires), len(sizes)), (2, 2, 2))
    derived_records: list[str] = []
    answers: str | None = None
    for i, (direction, row) in enumerate(
        [
            ("c2s", "first c2s record: IV, `ts`, request"),
            ("s2c", "first s2c record: IV, `ts`, response"),
        ]
    ):
        iv, ts = _ticked(cells[row])[:2]
        message = strict_json_object(plaintexts[i].encode("utf-8"))
        rep.equal(f"printed {direction} ts is the plaintext's", message["ts"], int(ts))
        rep.equal(
            f"printed {direction} JSON is compact", compact_json(message), plaintexts[i]
        )
        plaintext = plaintext_of(message, direction, answers)
        if direction == "c2s":
            answers = message["request"]["type"]
        sealed = seal(d["keys"], direction, 0, bytes.fromhex(iv), plaintext)
        derived_records += [sealed["wire"], sealed["mac_input"].hex()]
        head, _, tail = wires[i].partition("…")
        rep.check(
            f"printed first {direction} record (ciphertext shortened to 32 + 32 bytes)",
            bool(tail)
            and sealed["wire"].startswith(head)
            and sealed["wire"].endswith(tail)
            and re.fullmatch(r'[0-9a-f]{64}', head.rsplit('"', 1)[-1]) is not None
            and re.fullmatch(r'[0-9a-f]{64}', tail.split('"', 1)[0]) is not None,
            wires[i][:100],
        )
        n, spaces, total, pad, pad_byte, ct_len = sizes[i]
        rep.equal(
            f"printed {direction} sizes (JSON, spaces, plaintext, PKCS#7 bytes and byte, "
            "ciphertext)",
            (int(n), int(spaces), int(total), int(pad), pad_byte, int(ct_len)),
            (
                len(plaintexts[i].encode("utf-8")),
                len(plaintext) - len(plaintexts[i].encode("utf-8")),
                len(plaintext),
                16 - len(plaintext) % 16,
                f"{16 - len(plaintext) % 16:02x}",
                len(sealed["ciphertext"]),
            ),
        )
        if records and records[i]["direction"] == direction:
            rep.equal(
                f"first {direction} record is the vectors file's",
                sealed["wire"],
                records[i]["wire"],
            )
    m = re.search(r"a `deposit` at `seq` 1,.*?its plaintext of\s+(\d+) bytes", section, re.S)
    rep.equal(
        "printed size of the deposit at seq 1 (not padded)",
        int(m.group(1)) if m else None,
        len(records[2]["plaintext"].encode()) if records else None,
    )
    # Nothing stale: every hex run of 8+ characters printed in §13.1 is something derived here.
    haystack = " ".join(
        [json.dumps(got), json.dumps(inputs), d["bank_pin"]] + plaintexts + derived_records
    )
    stale = [h for h in re.findall(r"[0-9a-f]{8,}", section) if h not in haystack]
    rep.equal("hex values printed in §13.1 that were not derived", stale, [])

    # §15: the pin, the auth file and the link printed for the same terminal and bank.
    s15 = spec[spec.index("## 15. ") : spec.index("## 16. ")]
    lines15 = [
        line for block in re.findall(r"```\n(.*?)```", s15, re.S) for line in block.splitlines()
    ]
    want = (
        inputs["terminal_id"],
        bytes.fromhex(inputs["psk"]),
        (inputs["bank_id"], d["bank_static_public"]),
    )
    rep.check("§15.1 prints the pin of §13", d["bank_pin"] in lines15)
    auth = [line for line in lines15 if line.startswith('{"terminal_id":"' + inputs["terminal_id"])]
    rep.equal(
        "§15.2 example auth file", auth, [auth_file_text(*want[:2], d["bank_pin"]).rstrip("\n")]
    )
    rep.equal("§15.2 example auth file parses", parse_auth_file(auth[0]) if auth else None, want)
    links = [line for line in lines15 if line.startswith("http")]
    rep.equal(
        "§15.3 example link",
        links,
        [f"http://127.0.0.1:8765/#terminal={want[0]}&key={want[1].hex()}&bank={d['bank_pin']}"],
    )
    rep.equal("§15.3 example link parses", parse_link(links[0]) if links else None, want)
    rep.end()


# ---------------------------------------------------------------------------------------------
# §16 Enrollment by a one-time code: the code and its key, the two enrollment hellos, the
# enrollment transcript, the exporter and the enrolled terminal's key.
# ---------------------------------------------------------------------------------------------

LABEL_ENROLL_TRANSCRIPT = PREFIX + b"enroll transcript"  # §16.4, 28 bytes
LABEL_EXPORTER = PREFIX + b"enroll exporter"  # §16.4, HKDF info of EXP
LABEL_TERMINAL_KEY = PREFIX + b"enrolled terminal key"  # §16.4, 32 bytes
LABEL_CODE_PSK = PREFIX + b"enrollment code"  # §16.2, the HKDF salt

# §16.1: the code's text, and the code id alone (`e-` and exactly 10 lowercase hex).
_CODE = re.compile(r"(e-[0-9a-f]{10})-([0-9a-f]{32})")
_CODE_ID = re.compile(r"e-[0-9a-f]{10}")


def parse_code(text: str) -> tuple[str, bytes]:
    """§16.1: `e-<10 lowercase hex>-<32 lowercase hex>`, whitespace around it ignored (the
    spec allows it), nothing else. Returns (code id, 16-byte secret)."""
    m = _CODE.fullmatch(text.strip())
    if m is None:
        raise Refused("code", "not e-<10 lowercase hex>-<32 lowercase hex>")
    return m.group(1), bytes.fromhex(m.group(2))


def code_psk(code_id: str, secret: bytes) -> bytes:
    """§16.2: PSK_code = HKDF-SHA256(salt = label, IKM = secret, info = code id, L = 32),
    with the library's full HKDF (extract and expand)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=LABEL_CODE_PSK, info=code_id.encode("ascii")
    ).derive(secret)


def enroll_transcript_input(
    bank_id: str,
    bank_key: bytes,
    code_id: str,
    client_nonce: bytes,
    client_share: bytes,
    client_ts: int,
    bank_nonce: bytes,
    bank_share: bytes,
    bank_ts: int,
) -> bytes:
    """§16.4: the enrollment transcript, 207 + len(bank_id) + 12 bytes."""
    bid = bank_id.encode("ascii")
    cid = code_id.encode("ascii")
    return (
        LABEL_ENROLL_TRANSCRIPT  # 28 bytes
        + bytes([PROTOCOL_VERSION])
        + bytes([len(bid)])
        + bid  # the enroll_server_hello's bank_id
        + bank_key  # the enroll_server_hello's bank_key (32 bytes)
        + bytes([len(cid)])  # 12
        + cid  # the enroll_hello's code_id
        + client_nonce
        + client_share
        + u64be(client_ts)
        + bank_nonce
        + bank_share
        + u64be(bank_ts)
    )


def enroll_schedule(
    psk: bytes,
    transcript: bytes,
    client_nonce: bytes,
    bank_nonce: bytes,
    dh_ee: bytes,
    dh_es: bytes,
) -> dict[str, Any]:
    """§16.4: the key schedule of §6 on the enrollment transcript, plus EXP."""
    out = schedule(psk, transcript, client_nonce, bank_nonce, dh_ee, dh_es)
    out["exporter"] = hkdf_expand_32(out["prk"], LABEL_EXPORTER)
    return out


def enrolled_terminal_key(exporter: bytes, terminal_id: str) -> bytes:
    """§16.4: PSK_terminal = HMAC(EXP, label || u8(len(id)) || id)."""
    tid = terminal_id.encode("ascii")
    return hmac_sha256(exporter, LABEL_TERMINAL_KEY + bytes([len(tid)]) + tid)


def enroll_hello_text(code_id: str, client_nonce: bytes, client_share: bytes, ts: int) -> str:
    """§16.3.1, fields in the listed order."""
    return compact_json(
        {
            "type": "enroll_hello",
            "version": PROTOCOL_VERSION,
            "code_id": code_id,
            "client_nonce": client_nonce.hex(),
            "client_share": client_share.hex(),
            "timestamp": ts,
        }
    )


def enroll_server_hello_text(
    bank_id: str, bank_key: bytes, bank_nonce: bytes, bank_share: bytes, ts: int, finished: bytes
) -> str:
    """§16.3.2, fields in the listed order."""
    return compact_json(
        {
            "type": "enroll_server_hello",
            "version": PROTOCOL_VERSION,
            "bank_id": bank_id,
            "bank_key": bank_key.hex(),
            "bank_nonce": bank_nonce.hex(),
            "bank_share": bank_share.hex(),
            "timestamp": ts,
            "finished": finished.hex(),
        }
    )


def bank_receive_enroll_hello(text: bytes, now: int, max_skew_ms: int) -> dict[str, Any]:
    """§16.6 step 1, in the listed order."""
    msg = parse_handshake(
        text, "enroll_hello", ["version", "code_id", "client_nonce", "client_share", "timestamp"]
    )
    if (
        not is_uint(msg["version"], U8_MAX)
        or type(msg["code_id"]) is not str
        or not is_uint(msg["timestamp"], U64_MAX)
    ):
        raise Refused("json", "field type")
    if msg["version"] != PROTOCOL_VERSION:
        raise Refused("version")
    if not _TERMINAL_ID.fullmatch(msg["code_id"]):
        raise Refused("code_id", "not 1-64 characters of [A-Za-z0-9_-]")
    decode_hex(msg["client_nonce"], 32)
    decode_hex(msg["client_share"], 32)
    if not is_fresh(msg["timestamp"], now, max_skew_ms):
        raise Refused("timestamp")
    if not _CODE_ID.fullmatch(msg["code_id"]):
        raise Refused("code_id", "not a code id")
    return msg


def bank_answer_enroll(
    hello: dict[str, Any],
    psk_code: bytes | None,
    bank_id: str,
    bank_static_secret: bytes,
    bank_nonce: bytes,
    bank_secret: bytes,
    bank_ts: int,
    throw_away: bytes = bytes([0x99]) * 32,
) -> dict[str, Any]:
    """§16.6 step 3 (after the code was taken in step 2): `psk_code` None is an unknown, used or
    expired code, answered with the throw-away key. Returns the schedule and the message."""
    client_share = decode_hex(hello["client_share"], 32)
    client_nonce = decode_hex(hello["client_nonce"], 32)
    bank_share = x25519_share(bank_secret)
    dh_ee = x25519_dh(bank_secret, client_share)
    dh_es = x25519_dh(bank_static_secret, client_share)
    bank_key = x25519_share(bank_static_secret)
    transcript = enroll_transcript_input(
        bank_id,
        bank_key,
        hello["code_id"],
        client_nonce,
        client_share,
        hello["timestamp"],
        bank_nonce,
        bank_share,
        bank_ts,
    )
    psk = psk_code if psk_code is not None else throw_away
    out = enroll_schedule(psk, transcript, client_nonce, bank_nonce, dh_ee, dh_es)
    out["code_good"] = psk_code is not None
    out["enroll_server_hello_message"] = enroll_server_hello_text(
        bank_id, bank_key, bank_nonce, bank_share, bank_ts, out["server_finished"]
    )
    return out


def terminal_receive_enroll_server_hello(
    text: bytes,
    now: int,
    max_skew_ms: int,
    psk_code: bytes,
    code_id: str,
    client_nonce: bytes,
    client_secret: bytes,
    client_ts: int,
) -> dict[str, Any]:
    """§16.5 step 2, checks 1-9 in the listed order. Returns the schedule and the pin."""
    msg = parse_handshake(  # checks 1, 2
        text,
        "enroll_server_hello",
        ["version", "bank_id", "bank_key", "bank_nonce", "bank_share", "timestamp", "finished"],
    )
    if (
        not is_uint(msg["version"], U8_MAX)
        or not is_uint(msg["timestamp"], U64_MAX)
        or type(msg["bank_id"]) is not str
        or type(msg["bank_key"]) is not str
    ):
        raise Refused("json", "field type")
    if msg["version"] != PROTOCOL_VERSION:  # check 3
        raise Refused("version")
    bank_nonce = decode_hex(msg["bank_nonce"], 32)  # check 4
    bank_share = decode_hex(msg["bank_share"], 32)
    finished = decode_hex(msg["finished"], 32)
    if not is_fresh(msg["timestamp"], now, max_skew_ms):  # check 5
        raise Refused("timestamp")
    bank_id, bank_key = parse_pin(f"{msg['bank_id']}:{msg['bank_key']}")  # check 6 (§15.1)
    dh_ee = x25519_dh(client_secret, bank_share)  # check 7
    dh_es = x25519_dh(client_secret, bank_key)
    transcript = enroll_transcript_input(  # check 8
        bank_id,
        bank_key,
        code_id,
        client_nonce,
        x25519_share(client_secret),
        client_ts,
        bank_nonce,
        bank_share,
        msg["timestamp"],
    )
    out = enroll_schedule(psk_code, transcript, client_nonce, bank_nonce, dh_ee, dh_es)
    if not hmac.compare_digest(finished, out["server_finished"]):  # check 9
        raise Refused("finished")
    out["pin"] = (bank_id, bank_key)
    return out


ENROLLMENT_INPUT_FIELDS = {
    "code_id",
    "code_secret",
    "client_nonce",
    "client_x25519_secret",
    "client_timestamp",
    "bank_nonce",
    "bank_x25519_secret",
    "bank_timestamp",
    "terminal_id",
}
ENROLLMENT_FIELDS = {
    "inputs",
    "code",
    "code_psk",
    "client_share",
    "bank_share",
    "dh_ee",
    "dh_es",
    "transcript",
    "transcript_hash",
    "master_secret",
    "prk",
    "keys",
    "exporter",
    "server_finished",
    "client_finished",
    "enroll_hello_message",
    "enroll_server_hello_message",
    "client_finished_message",
    "records",
    "terminal_key",
    "auth_file",
}


def derive_enrollment(
    bank_id: str,
    bank_static_secret: bytes,
    code_id: str,
    secret: bytes,
    client_nonce: bytes,
    client_secret: bytes,
    client_ts: int,
    bank_nonce: bytes,
    bank_secret: bytes,
    bank_ts: int,
    terminal_id: str,
    request: tuple[bytes, int],
    response: tuple[bytes, int],
) -> dict[str, Any]:
    """§16 from the inputs, as both ends would, every value named as in the file (§13.2)."""
    psk = code_psk(code_id, secret)
    bank_key = x25519_share(bank_static_secret)
    client_share = x25519_share(client_secret)
    bank_share = x25519_share(bank_secret)
    dh_ee = x25519_dh(client_secret, bank_share)
    if not hmac.compare_digest(dh_ee, x25519_dh(bank_secret, client_share)):
        raise Refused("dh", "the two sides disagree on dh_ee")
    dh_es = x25519_dh(client_secret, bank_key)
    if not hmac.compare_digest(dh_es, x25519_dh(bank_static_secret, client_share)):
        raise Refused("dh", "the two sides disagree on dh_es")
    transcript = enroll_transcript_input(
        bank_id,
        bank_key,
        code_id,
        client_nonce,
        client_share,
        client_ts,
        bank_nonce,
        bank_share,
        bank_ts,
    )
    out = enroll_schedule(psk, transcript, client_nonce, bank_nonce, dh_ee, dh_es)
    terminal_key = enrolled_terminal_key(out["exporter"], terminal_id)
    (request_iv, request_ts), (response_iv, response_ts) = request, response
    records = []
    for direction, iv, plaintext in (
        ("c2s", request_iv, compact_json({"ts": request_ts, "request": {"type": "enroll"}})),
        (
            "s2c",
            response_iv,
            compact_json(
                {"ts": response_ts, "response": {"type": "enrolled", "terminal": terminal_id}}
            ),
        ),
    ):
        sealed = seal(out["keys"], direction, 0, iv, plaintext.encode("utf-8"))
        records.append(
            {
                "direction": direction,
                "seq": 0,
                "iv": iv.hex(),
                "plaintext": plaintext,
                "ciphertext": sealed["ciphertext"].hex(),
                "mac_input": sealed["mac_input"].hex(),
                "mac": sealed["mac"].hex(),
                "wire": sealed["wire"],
            }
        )
    return {
        "code": f"{code_id}-{secret.hex()}",
        "code_psk": psk,
        "client_share": client_share,
        "bank_share": bank_share,
        "dh_ee": dh_ee,
        "dh_es": dh_es,
        "transcript": transcript,
        "transcript_hash": out["transcript_hash"],
        "master_secret": out["master_secret"],
        "prk": out["prk"],
        "keys": out["keys"],
        "exporter": out["exporter"],
        "server_finished": out["server_finished"],
        "client_finished": out["client_finished"],
        "enroll_hello_message": enroll_hello_text(code_id, client_nonce, client_share, client_ts),
        "enroll_server_hello_message": enroll_server_hello_text(
            bank_id, bank_key, bank_nonce, bank_share, bank_ts, out["server_finished"]
        ),
        "client_finished_message": client_finished_text(out["client_finished"]),
        "records": records,
        "terminal_key": terminal_key,
        "auth_file": auth_file_text(terminal_id, terminal_key, pin_text(bank_id, bank_key)),
    }


def derive_enrollment_from_file(inputs: dict[str, Any], e: dict[str, Any]) -> dict[str, Any]:
    """`e` is the file's enrollment section: its inputs, plus the IV and `ts` of each of its two
    records (inputs of the sealing, like the main records')."""
    ei = e["inputs"]
    return derive_enrollment(
        inputs["bank_id"],
        bytes.fromhex(inputs["bank_static_secret"]),
        ei["code_id"],
        bytes.fromhex(ei["code_secret"]),
        bytes.fromhex(ei["client_nonce"]),
        bytes.fromhex(ei["client_x25519_secret"]),
        ei["client_timestamp"],
        bytes.fromhex(ei["bank_nonce"]),
        bytes.fromhex(ei["bank_x25519_secret"]),
        ei["bank_timestamp"],
        ei["terminal_id"],
        *(
            (bytes.fromhex(r["iv"]), json.loads(r["plaintext"])["ts"])
            for r in e["records"][:2]
        ),
    )


def check_enrollment(rep: Report, inputs: dict[str, Any], hs: dict[str, Any], e: Any) -> None:
    """§16 against the file's `enrollment` section: every value recomputed, every message
    received as the peer would, and the refusals §16.5 and §16.6 require."""
    rep.begin("§16 enrollment by code: values recomputed from inputs")
    if not isinstance(e, dict):
        rep.check("the file has an enrollment section (§13.2)", False)
        rep.end()
        return
    rep.equal("enrollment fields are those of §13.2", sorted(e), sorted(ENROLLMENT_FIELDS))
    rep.equal(
        "enrollment.inputs fields are those of §13.2",
        sorted(e["inputs"]),
        sorted(ENROLLMENT_INPUT_FIELDS),
    )
    rep.equal("enrollment.keys fields", sorted(e["keys"]), sorted(KEY_LABELS))
    ei = e["inputs"]
    d = derive_enrollment_from_file(inputs, e)
    got = hexes(d)
    for name in sorted(ENROLLMENT_FIELDS - {"inputs", "keys", "records"}):
        rep.equal(name, got[name], e[name])
    for name in KEY_LABELS:
        rep.equal(f"keys.{name}", got["keys"][name], e["keys"][name])
    rep.equal("two records", len(e["records"]), 2)
    for i, (mine, theirs) in enumerate(zip(got["records"], e["records"])):
        for field in ("direction", "seq", "iv", "plaintext", "ciphertext", "mac_input", "mac"):
            rep.equal(f"record {i} {field}", mine[field], theirs[field])
        rep.equal(f"record {i} wire", mine["wire"], theirs["wire"])
    try:
        rep.equal("the code parses to its id and secret", parse_code(e["code"]),
                  (ei["code_id"], bytes.fromhex(ei["code_secret"])))
    except Refused as err:
        rep.check("the code parses", False, str(err))
    rep.equal("the code is 45 characters", len(e["code"]), 45)
    # §16.2's remark: HKDF with L = 32 is HMAC(HMAC(salt, IKM), info || 0x01).
    rep.equal(
        "§16.2 shortcut agrees",
        hmac_sha256(hmac_sha256(LABEL_CODE_PSK, bytes.fromhex(ei["code_secret"])),
                    ei["code_id"].encode() + b"\x01"),
        d["code_psk"],
    )
    rep.equal("§16.4 transcript length", len(d["transcript"]),
              207 + len(inputs["bank_id"]) + len(ei["code_id"]))
    rep.equal("labels' lengths (28, 26, 32, 26)",
              [len(x) for x in (LABEL_ENROLL_TRANSCRIPT, LABEL_EXPORTER, LABEL_TERMINAL_KEY,
                                LABEL_CODE_PSK)], [28, 26, 32, 26])
    rep.check("the enrollment's keys are not the session's",
              d["keys"]["c2s_enc"].hex() != hs["keys"]["c2s_enc"])
    rep.check("the terminal key is not the code's key", d["terminal_key"] != d["code_psk"])
    rep.check(
        "the terminal key depends on the terminal id",
        enrolled_terminal_key(d["exporter"], "t-0123456789ac") != d["terminal_key"],
    )
    rep.equal(
        "the auth file parses to (terminal id, terminal key, the bank's pin)",
        parse_auth_file(e["auth_file"]),
        (ei["terminal_id"], d["terminal_key"], parse_pin(hs["bank_pin"])),
    )
    rep.end()

    # --- the exchange, received as each peer would ----------------------------------------
    rep.begin("§16.5-§16.7 enrollment received and verified (+ negative cases)")
    skew = inputs["max_skew_ms"]
    bank_id = inputs["bank_id"]
    bank_static = bytes.fromhex(inputs["bank_static_secret"])
    code_id, secret = ei["code_id"], bytes.fromhex(ei["code_secret"])
    psk = code_psk(code_id, secret)
    cn, cs = bytes.fromhex(ei["client_nonce"]), bytes.fromhex(ei["client_x25519_secret"])
    bn, bs = bytes.fromhex(ei["bank_nonce"]), bytes.fromhex(ei["bank_x25519_secret"])
    ct, bt = ei["client_timestamp"], ei["bank_timestamp"]
    eh = e["enroll_hello_message"].encode()
    esh = e["enroll_server_hello_message"].encode()
    cf = e["client_finished_message"].encode()

    def ok(label: str, action: Callable[[], Any]) -> Any:
        try:
            result = action()
            rep.check(label, True)
            return result
        except Refused as err:
            rep.check(label, False, f"refused: {err}")
            return None

    def terminal_reads(text: bytes, key: bytes = psk, cid: str = code_id):
        return lambda: terminal_receive_enroll_server_hello(text, bt, skew, key, cid, cn, cs, ct)

    hello = ok("bank accepts enroll_hello", lambda: bank_receive_enroll_hello(eh, bt, skew))
    answer = bank_answer_enroll(hello or json.loads(eh), psk, bank_id, bank_static, bn, bs, bt)
    rep.equal(
        "bank's answer to enroll_hello is the file's enroll_server_hello",
        answer["enroll_server_hello_message"],
        e["enroll_server_hello_message"],
    )
    got_t = ok("terminal accepts enroll_server_hello (bank Finished verified)", terminal_reads(esh))
    if got_t is not None:
        rep.equal("the pin learnt is the bank's (§15.1)", got_t["pin"], parse_pin(hs["bank_pin"]))
        rep.equal("the terminal's exporter is the bank's", got_t["exporter"], answer["exporter"])
    ok(
        "bank accepts client_finished (terminal Finished verified, code good)",
        lambda: bank_receive_client_finished(
            cf, answer["keys"]["client_finished"], answer["transcript_hash"], True
        ),
    )
    keys = answer["keys"]
    bank_rx, term_rx = RecordReceiver(keys, "c2s", skew), RecordReceiver(keys, "s2c", skew)
    req, resp = e["records"]
    opened = ok("bank opens the enroll record",
                lambda: bank_rx.open(req["wire"].encode(), json.loads(req["plaintext"])["ts"]))
    if opened:
        rep.equal("... and it is the request enroll", opened[1]["request"], {"type": "enroll"})
    opened = ok("terminal opens the enrolled record",
                lambda: term_rx.open(resp["wire"].encode(), json.loads(resp["plaintext"])["ts"]))
    if opened:
        rep.equal("... and it names the new terminal", opened[1]["response"],
                  {"type": "enrolled", "terminal": ei["terminal_id"]})

    # A wrong code: same id, another secret (a guess) -- the Finished fails (check 9).
    for what, wrong in [
        ("last secret byte changed", secret[:-1] + bytes([secret[-1] ^ 1])),
        ("all-zero secret", bytes(16)),
    ]:
        rep.refused(
            f"terminal with a wrong code ({what}) refuses the bank's Finished",
            terminal_reads(esh, key=code_psk(code_id, wrong)),
            "finished",
        )
    rep.refused(
        "terminal holding the same secret under another code id refuses",
        terminal_reads(esh, key=code_psk("e-e0e1e2e3e5", secret), cid="e-e0e1e2e3e5"),
        "finished",
    )
    # The bank answering an unknown, used or expired code: a throw-away key, same shape.
    unknown = bank_answer_enroll(json.loads(eh), None, bank_id, bank_static, bn, bs, bt)
    rep.equal(
        "an unknown code's answer has the same length",
        len(unknown["enroll_server_hello_message"]),
        len(e["enroll_server_hello_message"]),
    )
    rep.refused(
        "terminal refuses the answer to an unknown code (throw-away key)",
        terminal_reads(unknown["enroll_server_hello_message"].encode()),
        "finished",
    )
    rep.refused(
        "bank refuses a right client_finished when the code was not good (no short-circuit)",
        lambda: bank_receive_client_finished(
            cf, answer["keys"]["client_finished"], answer["transcript_hash"], False
        ),
        "finished",
    )
    # The bank's identity in its hello is authenticated: swapped in flight, the Finished fails.
    other_key = x25519_share(bytes([0x25]) * 32)
    sh_obj = json.loads(esh)
    for what, change in [
        ("another bank key", {"bank_key": other_key.hex()}),
        ("another bank id", {"bank_id": "another-bank"}),
        ("another bank id and key", {"bank_id": "impostor", "bank_key": other_key.hex()}),
        ("a changed timestamp", {"timestamp": bt + 1}),
    ]:
        rep.refused(
            f"enroll_server_hello with {what} swapped in fails the Finished",
            terminal_reads(compact_json({**sh_obj, **change}).encode()),
            "finished",
        )
    # An impostor bank without the code: its own static key and a guessed code key.
    impostor = bank_answer_enroll(
        json.loads(eh), code_psk(code_id, bytes(16)), "impostor", bytes([0x25]) * 32, bn, bs, bt
    )
    rep.refused(
        "an impostor bank without the code (own key, guessed code) fails the Finished",
        terminal_reads(impostor["enroll_server_hello_message"].encode()),
        "finished",
    )
    leaked = bank_answer_enroll(json.loads(eh), psk, "impostor", bytes([0x25]) * 32, bn, bs, bt)
    got_l = ok(
        "an impostor holding the code passes, and the terminal pins the impostor (§16.8)",
        terminal_reads(leaked["enroll_server_hello_message"].encode()),
    )
    if got_l is not None:
        rep.equal("... its pin", got_l["pin"], ("impostor", x25519_share(bytes([0x25]) * 32)))
    # Low-order bank keys: refused at check 6, before any X25519 with them.
    for point in LOW_ORDER_POINTS:
        rep.refused(
            f"enroll_server_hello with low-order bank_key {point.hex()[:8]}… refused",
            terminal_reads(compact_json({**sh_obj, "bank_key": point.hex()}).encode()),
            "pin",
        )
    for what, change in [
        ("uppercase bank_key", {"bank_key": sh_obj["bank_key"].upper()}),
        ("a 31-byte bank_key", {"bank_key": sh_obj["bank_key"][:-2]}),
        ("a bank_id with a dot", {"bank_id": "bank.1"}),
        ("an empty bank_id", {"bank_id": ""}),
        ("a 65-character bank_id", {"bank_id": "a" * 65}),
    ]:
        rep.refused(
            f"enroll_server_hello with {what} refused",
            terminal_reads(compact_json({**sh_obj, **change}).encode()),
            "pin",
        )
    rep.refused(
        "enroll_server_hello with a low-order bank_share refused",
        terminal_reads(compact_json({**sh_obj, "bank_share": "00" * 32}).encode()),
        "dh",
    )
    # The two kinds of hello never stand for each other.
    rep.refused(
        "a terminal's server_hello is not accepted as an enroll_server_hello",
        terminal_reads(hs["server_hello_message"].encode()),
        "json",
    )
    rep.refused(
        "an enroll_server_hello is not accepted as a server_hello",
        lambda: atm_receive_server_hello(
            esh, bt, skew, bytes.fromhex(inputs["psk"]), parse_pin(hs["bank_pin"]),
            inputs["terminal_id"], bytes.fromhex(inputs["client_nonce"]),
            bytes.fromhex(inputs["client_x25519_secret"]), inputs["client_timestamp"],
        ),
        "json",
    )
    rep.refused(
        "an enroll_hello is not a client_hello",
        lambda: bank_receive_client_hello(
            eh, bt, skew, bytes.fromhex(inputs["bank_static_secret"])
        ),
        "json",
    )
    rep.refused(
        "a client_hello is not an enroll_hello",
        lambda: bank_receive_enroll_hello(hs["client_hello_message"].encode(), bt, skew),
        "json",
    )
    rep.refused(
        "enroll_server_hello without bank_key (a server_hello's fields) refused",
        terminal_reads(compact_json({k: v for k, v in sh_obj.items() if k != "bank_key"}).encode()),
        "json",
    )
    # Code ids: `e-` and exactly 10 lowercase hex, nothing else (§16.1, §16.6 check 6).
    eh_obj = json.loads(eh)
    for bad in [
        "t-e0e1e2e3e4",
        "E-e0e1e2e3e4",
        "e_e0e1e2e3e4",
        "ee0e1e2e3e4",
        "e-E0E1E2E3E4",
        "e-e0e1e2e3",
        "e-e0e1e2e3e4f5",
        "e-e0e1e2e3e",
        "e-e0e1e2e3eg",
        "atm-0001",
    ]:
        rep.refused(
            f"enroll_hello with code_id {bad!r} refused",
            lambda bad=bad: bank_receive_enroll_hello(
                compact_json({**eh_obj, "code_id": bad}).encode(), bt, skew
            ),
            "code_id",
        )
    for version in (1, 0, 3):
        rep.refused(
            f"enroll_hello with version {version} refused",
            lambda v=version: bank_receive_enroll_hello(
                compact_json({**eh_obj, "version": v}).encode(), bt, skew
            ),
            "version",
        )
        rep.refused(
            f"enroll_server_hello with version {version} refused",
            terminal_reads(compact_json({**sh_obj, "version": version}).encode()),
            "version",
        )
    rep.refused(
        "enroll_hello 30001 ms stale refused",
        lambda: bank_receive_enroll_hello(eh, ct + skew + 1, skew),
        "timestamp",
    )
    rep.refused(
        "enroll_hello with an unknown field refused",
        lambda: bank_receive_enroll_hello(eh[:-1] + b',"x":1}', bt, skew),
        "json",
    )
    # The code's text (§16.1).
    code = e["code"]
    ok("the code with a line end and spaces around it is read",
       lambda: parse_code(f"  {code}\n"))
    for what, bad in [
        ("uppercase", code.upper()),
        ("uppercase secret only", code[:13] + code[13:].upper()),
        ("t- prefix", "t-" + code[2:]),
        ("no separators", code.replace("-", "")),
        ("a space inside", code[:13] + " " + code[13:]),
        ("one character short", code[:-1]),
        ("one character more", code + "0"),
        ("an 11-character id", code[:12] + "0" + code[12:]),
        ("a 9-character id", code[:11] + code[12:]),
        ("the id alone", code[:12]),
        ("a 30-character secret", code[:-2]),
        ("an underscore for the dash", code[:12] + "_" + code[13:]),
        ("empty", ""),
    ]:
        rep.refused(f"code with {what} refused", lambda bad=bad: parse_code(bad), "code")
    # The enrollment session's messages: enroll has no field, enrolled a terminal id.
    rx_keys = answer["keys"]
    iv = bytes(range(16))
    t = json.loads(req["plaintext"])["ts"]

    def enroll_rx(direction: str, plaintext: bytes) -> Callable[[], Any]:
        wire = seal(rx_keys, direction, 0, iv, plaintext)["wire"].encode()
        return lambda: RecordReceiver(rx_keys, direction, skew).open(wire, t)

    rep.refused(
        "valid MAC, enroll with a field",
        enroll_rx("c2s", f'{{"ts":{t},"request":{{"type":"enroll","x":1}}}}'.encode()),
        "9",
    )
    rep.refused(
        "valid MAC, enrolled with a bad terminal id",
        enroll_rx(
            "s2c", f'{{"ts":{t},"response":{{"type":"enrolled","terminal":"t 1"}}}}'.encode()
        ),
        "9",
    )
    rep.refused(
        "valid MAC, enrolled without its terminal",
        enroll_rx("s2c", f'{{"ts":{t},"response":{{"type":"enrolled"}}}}'.encode()),
        "9",
    )
    ok(
        "valid MAC, the refusal error not_allowed parses",
        enroll_rx(
            "s2c", f'{{"ts":{t},"response":{{"type":"error","code":"not_allowed"}}}}'.encode()
        ),
    )
    main_keys = {k: bytes.fromhex(v) for k, v in hs["keys"].items()}
    rep.refused(
        "the enroll record does not open with the ordinary session's keys",
        lambda: RecordReceiver(main_keys, "c2s", skew).open(req["wire"].encode(), t),
        "6",
    )

    # The enrolled credentials open an ordinary session (§7) with the same bank.
    tid, tkey = ei["terminal_id"], d["terminal_key"]
    session = derive_handshake(
        tkey, bank_id, bank_static, tid, cn, cs, ct, bn, bs, bt
    )
    ok(
        "the enrolled terminal's ordinary server_hello verifies with its pin",
        lambda: atm_receive_server_hello(
            session["server_hello_message"].encode(), bt, skew, tkey, parse_pin(hs["bank_pin"]),
            tid, cn, cs, ct,
        ),
    )
    ok(
        "... and its client_finished with the bank's copy of the key",
        lambda: bank_receive_client_finished(
            session["client_finished_message"].encode(),
            session["keys"]["client_finished"], session["transcript_hash"], True,
        ),
    )
    rep.refused(
        "an ordinary session with the code's key in place of the terminal's refused",
        lambda: atm_receive_server_hello(
            session["server_hello_message"].encode(), bt, skew, psk, parse_pin(hs["bank_pin"]),
            tid, cn, cs, ct,
        ),
        "finished",
    )
    rep.end()


def check_enrollment_example(rep: Report, spec_path: Path, e: dict[str, Any] | None) -> None:
    """§16.9: the example printed in the spec, recomputed from the inputs printed there; every
    hex value printed in it must be one this implementation derived."""
    rep.begin("§16.9 enrollment example in the spec recomputed")
    spec = spec_path.read_text(encoding="utf-8")
    start = spec.index("### 16.9 ")
    section = spec[start : spec.index("\n## ", start)]  # up to the next chapter
    cells = _cells(section)

    def one(name: str) -> str:
        return _ticked(cells[name])[0]

    code_id, secret = parse_code(one("code"))
    rep.equal("printed code id", one("code id"), code_id)
    rep.equal("printed code secret", one("code secret"), secret.hex())
    req_iv, req_ts = _ticked(cells["`enroll` record: IV, `ts`"])[:2]
    resp_iv, resp_ts = _ticked(cells["`enrolled` record: IV, `ts`"])[:2]
    ct = int(one("client timestamp"))
    rep.equal("printed record times are client timestamp + 1000, + 1005",
              (int(req_ts), int(resp_ts)), (ct + 1000, ct + 1005))
    # The bank is §13.1's: its id and static secret are read there.
    s13 = _cells(spec[spec.index("### 13.1 ") : spec.index("### 13.2 ")])
    bank_id, bank_static = _ticked(s13["bank id"])[0], _ticked(s13["bank static X25519 secret"])[0]
    d = derive_enrollment(
        bank_id, bytes.fromhex(bank_static), code_id, secret,
        bytes.fromhex(one("client nonce")), bytes.fromhex(one("client ephemeral X25519 secret")),
        ct, bytes.fromhex(one("bank nonce")), bytes.fromhex(one("bank ephemeral X25519 secret")),
        int(one("bank timestamp")), one("new terminal id"),
        (bytes.fromhex(req_iv), int(req_ts)), (bytes.fromhex(resp_iv), int(resp_ts)),
    )
    got = hexes(d)
    printed = {
        "PSK_code": got["code_psk"],
        "client share": got["client_share"],
        "bank share": got["bank_share"],
        "dh_ee": got["dh_ee"],
        "dh_es": got["dh_es"],
        "th": got["transcript_hash"],
        "MS": got["master_secret"],
        "PRK": got["prk"],
        "K_c2s_enc": got["keys"]["c2s_enc"],
        "K_c2s_mac": got["keys"]["c2s_mac"],
        "K_s2c_enc": got["keys"]["s2c_enc"],
        "K_s2c_mac": got["keys"]["s2c_mac"],
        "K_cfin": got["keys"]["client_finished"],
        "K_sfin": got["keys"]["server_finished"],
        "EXP": got["exporter"],
        "bank Finished": got["server_finished"],
        "ATM Finished": got["client_finished"],
        "PSK_terminal": got["terminal_key"],
    }
    for name, value in printed.items():
        rep.equal(f"printed {name}", one(name) if name in cells else None, value)
    tr_name = next(n for n in cells if n.startswith("transcript input"))
    rep.equal("printed transcript length", tr_name,
              f"transcript input ({len(d['transcript'])} bytes)")
    pattern = "".join(
        (
            re.escape(p.split("…")[0]) + "[0-9a-f]*" + re.escape(p.split("…")[1])
            if "…" in p
            else re.escape(p)
        )
        for p in _ticked(cells[tr_name])
    )
    rep.check("printed transcript pieces", re.fullmatch(pattern, got["transcript"]) is not None)
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    lines = [line for block in blocks for line in block.splitlines() if line]
    for name in ("enroll_hello_message", "enroll_server_hello_message", "client_finished_message"):
        rep.check(f"printed {name}", d[name] in lines, d[name])
    for r in d["records"]:
        rep.check(f"printed {r['direction']} plaintext", r["plaintext"] in lines, r["plaintext"])
        rep.check(f"printed {r['direction']} record", r["wire"] in lines, r["wire"])
    sizes = re.findall(
        r"Plaintext \((\d+) bytes, (?:a multiple of 16, so PKCS#7 adds|padded with) (\d+) bytes? "
        r"of\s+`0x([0-9a-f]{2})`;\s+ciphertext\s+(\d+)\s+bytes\)",
        section,
    )
    rep.equal(
        "printed sizes (plaintext, padding, padding byte, ciphertext)",
        [tuple(x) for x in sizes],
        [
            (str(len(r["plaintext"])), str(16 - len(r["plaintext"]) % 16),
             f"{16 - len(r['plaintext']) % 16:02x}", str(len(r["ciphertext"]) // 2))
            for r in d["records"]
        ],
    )
    rep.check("printed auth file", d["auth_file"].rstrip("\n") in lines, d["auth_file"])
    if e is not None:
        rep.equal(
            "the example is the vectors file's enrollment",
            got["enroll_server_hello_message"],
            e.get("enroll_server_hello_message"),
        )
    haystack = " ".join(
        [json.dumps(got), code_id, secret.hex(), one("client nonce"),
         one("client ephemeral X25519 secret"), one("bank nonce"),
         one("bank ephemeral X25519 secret"), bank_id, req_iv, resp_iv]
        + [r["mac_input"] for r in d["records"]]
    )
    stale = [h for h in re.findall(r"[0-9a-f]{8,}", section) if h not in haystack]
    rep.equal("hex values printed in §16.9 that were not derived", stale, [])
    # §16.1's example code is this one.
    s161 = spec[spec.index("### 16.1 ") : spec.index("### 16.2 ")]
    rep.check("§16.1's example code is §16.9's", one("code") in s161)
    rep.end()


# ---------------------------------------------------------------------------------------------
# §17 Signed cards
# ---------------------------------------------------------------------------------------------

CHANNEL_BINDING_LABEL = b"atm-psk-v2 channel binding"
CARD_LOGIN_LABEL = b"atm-psk-v2 card login"
CARD_REISSUE_LABEL = b"atm-psk-v2 card reissue"


def card_message(label: bytes, binding: bytes, username: str, extra: bytes = b"") -> bytes:
    """§17.2: label || channel binding (32) || len(username) (1 byte) || username || extra."""
    name = username.encode("ascii")
    return label + binding + bytes([len(name)]) + name + extra


def ed25519_public(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_verifies(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        return True
    except Exception:
        return False


def check_signed_card(
    rep: Report, hs: dict[str, Any], sc: dict[str, Any] | None, spec_path: Path | None = None
) -> None:
    rep.begin("signed cards (§17)")
    if sc is None:
        rep.check("the file has a signed_card section", False)
        rep.end()
        return
    inputs = sc["inputs"]
    binding = hkdf_expand_32(decode_hex(hs["prk"], 32), CHANNEL_BINDING_LABEL)
    rep.equal("channel_binding", binding.hex(), sc["channel_binding"])
    seed = decode_hex(inputs["card_seed"], 32)
    new_seed = decode_hex(inputs["new_card_seed"], 32)
    public, new_public = ed25519_public(seed), ed25519_public(new_seed)
    rep.equal("card_public", public.hex(), sc["card_public"])
    rep.equal("new_card_public", new_public.hex(), sc["new_card_public"])
    username = inputs["username"]
    login = card_message(CARD_LOGIN_LABEL, binding, username)
    reissue = card_message(CARD_REISSUE_LABEL, binding, username, new_public)
    rep.equal("login_message", login.hex(), sc["login_message"])
    rep.equal("reissue_message", reissue.hex(), sc["reissue_message"])
    card = Ed25519PrivateKey.from_private_bytes(seed)
    login_sig, reissue_sig = card.sign(login), card.sign(reissue)
    rep.equal("login_signature (RFC 8032 is deterministic)", login_sig.hex(), sc["login_signature"])
    rep.equal("reissue_signature", reissue_sig.hex(), sc["reissue_signature"])
    requests = {
        "open_request": {
            "type": "open_signed_card_account",
            "username": username,
            "initial_cents": inputs["initial_cents"],
            "txid": inputs["txid"],
            "card_public": public.hex(),
        },
        "login_request": {
            "type": "card_login_signed",
            "username": username,
            "signature": login_sig.hex(),
        },
        "reissue_request": {
            "type": "reissue_card_signed",
            "signature": reissue_sig.hex(),
            "new_public": new_public.hex(),
        },
    }
    for name, obj in requests.items():
        rep.equal(name, compact_json(obj), sc[name])
        try:
            check_tagged(strict_json_object(sc[name].encode()), REQUESTS)
            rep.check(f"{name} is a well-formed request", True)
        except Refused as e:
            rep.check(f"{name} is a well-formed request", False, e.step)
    rep.check("the login signature verifies", ed25519_verifies(public, login, login_sig))
    other = card_message(CARD_LOGIN_LABEL, bytes(32), username)
    rep.check("... not on another session", not ed25519_verifies(public, other, login_sig))
    bob = card_message(CARD_LOGIN_LABEL, binding, "bob")
    rep.check("... not for another name", not ed25519_verifies(public, bob, login_sig))
    rep.check("... not by another key", not ed25519_verifies(new_public, login, login_sig))
    rep.check("... nor as a reissue", not ed25519_verifies(public, reissue, login_sig))
    if spec_path is not None:
        spec = spec_path.read_text(encoding="utf-8")
        start = spec.index("### 17.6 ")
        printed = set(re.findall(r"[0-9a-f]{64,}", spec[start : spec.index("\n## ", start)]))
        derived = {binding.hex(), public.hex(), login.hex(), login_sig.hex()}
        rep.equal("hex values printed in §17.6 that were not derived", sorted(printed - derived), [])
        rep.check("§17.6 prints the login request", sc["login_request"] in spec[start:])
    rep.end()


def main(argv: list[str]) -> int:
    repo_root = Path(__file__).resolve().parents[2]
    path = Path(argv[1]) if len(argv) > 1 else repo_root / "protocol" / "vectors" / "v2.json"
    vectors = json.loads(path.read_text(encoding="utf-8"))
    print(f"checking {path}")
    rep = Report()
    inputs, hs, records = vectors["inputs"], vectors["handshake"], vectors["records"]
    groups: list[Callable[[], Any]] = [
        lambda: check_handshake(rep, inputs, hs),
        lambda: check_handshake_receivers(rep, inputs, hs, derive_from_inputs(inputs)),
        lambda: check_records(rep, inputs, records, derive_from_inputs(inputs)["keys"]),
        lambda: check_padding(
            rep,
            repo_root / "docs" / "PROTOCOL.md",
            inputs,
            records,
            derive_from_inputs(inputs)["keys"],
        ),
        lambda: check_messages_known(rep, repo_root / "docs" / "PROTOCOL.md"),
        lambda: check_enrollment_formats(rep, inputs, hs),
        lambda: check_worked_example(rep, repo_root / "docs" / "PROTOCOL.md", records),
        lambda: check_enrollment(rep, inputs, hs, vectors.get("enrollment")),
        lambda: check_enrollment_example(
            rep, repo_root / "docs" / "PROTOCOL.md", vectors.get("enrollment")
        ),
        lambda: check_signed_card(
            rep, hs, vectors.get("signed_card"), repo_root / "docs" / "PROTOCOL.md"
        ),
    ]
    for group in groups:
        try:
            group()
        except Exception:  # an unexpected crash counts as a failure, never as a pass
            traceback.print_exc()
            print("[FAILED] a check group crashed (traceback above)")
            rep.failed += 1
    print(f"{rep.passed} passed, {rep.failed} failed")
    return 0 if rep.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
