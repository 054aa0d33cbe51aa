"""The bank's tools: look-ups for customers, accounts, ledger, cards, payees, transfers and
disputes, and the banker's mutations.

Every rule in ``RULES`` (``__init__.py``) is enforced here and named in the
``ToolError``. Time is the scenario clock (``ctx.today``), never the wall clock.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import Code, DateStr, Id, Name, Note, SearchText, like, money
from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

DAILY_TRANSFER_LIMIT_CENTS = 500_000
DISPUTE_WINDOW_DAYS = 60
CARD_LIMIT_MIN_CENTS = 10_000
CARD_LIMIT_MAX_CENTS = 500_000
CARD_YEARS = 4
SEARCH_LIMIT = 20

# Not the toolkit's cents: the bank bounds amounts at 10**12 cents ($10bn), not at SQLite's largest
# integer, so a balance plus an amount stays far inside SQLite's integers (its schemas publish this bound).
PositiveCents = Annotated[int, Field(ge=1, le=10**12)]
Cents = Annotated[int, Field(ge=0, le=10**12)]
AccountType = Literal["checking", "savings"]
TransactionKind = Literal["deposit", "withdrawal", "card_purchase", "transfer_in", "transfer_out", "fee", "refund"]
DisputeReason = Literal["unauthorized", "duplicate", "incorrect_amount", "not_received"]
KycDocument = Literal["passport", "drivers_license", "national_id"]
DISPUTABLE = ("card_purchase", "withdrawal", "fee")


# --- helpers (not tools) -------------------------------------------------------------------------


def _customer(ctx: ToolContext, customer_id: int) -> dict[str, Any]:
    customer = ctx.one("SELECT * FROM customers WHERE id = ?", (customer_id,))
    if customer is None:
        raise ToolError(f"no customer with id {customer_id}; look customers up with find_customer")
    return customer


def _account(ctx: ToolContext, number: str) -> dict[str, Any]:
    account = ctx.one(
        "SELECT a.*, c.name AS owner FROM accounts a JOIN customers c ON c.id = a.customer_id "
        "WHERE upper(a.number) = upper(?)",
        (number.strip(),),
    )
    if account is None:
        raise ToolError(f"no account with number {number!r}; numbers look like CHK-20001 (see list_accounts)")
    return account


def _what(account: dict[str, Any]) -> str:
    nick = f" '{account['nickname']}'" if account.get("nickname") else ""
    return f"{account['account_type']} account {account['number']}{nick} of {account['owner']}"


def _card(ctx: ToolContext, last4: str) -> dict[str, Any]:
    card = ctx.one(
        "SELECT k.*, a.number AS account_number, c.name AS owner FROM cards k "
        "JOIN accounts a ON a.id = k.account_id JOIN customers c ON c.id = a.customer_id WHERE k.last4 = ?",
        (last4.strip(),),
    )
    if card is None:
        raise ToolError(f"no card ending {last4!r}; see list_cards for a customer's cards")
    return card


def _require_active(account: dict[str, Any], doing: str) -> None:
    if account["status"] != "active":
        raise ToolError(
            f"{_what(account)} is {account['status']} and cannot {doing}; only active accounts move money",
            rule="account-active",
        )


def _require_funds(account: dict[str, Any], amount: int, doing: str) -> None:
    available = account["balance_cents"] + account["overdraft_limit_cents"]
    if amount > available:
        raise ToolError(
            f"{_what(account)} cannot {doing} {money(amount, thousands=True)}: the balance is "
            f"{money(account['balance_cents'], thousands=True)} and the overdraft limit "
            f"{money(account['overdraft_limit_cents'], thousands=True)}, so at most "
            f"{money(available, thousands=True)} can leave it",
            rule="sufficient-funds",
        )


def _post(ctx: ToolContext, account: dict[str, Any], kind: str, amount: int, description: str, transfer_id=None):
    """Write a ledger entry and move the balance; returns (transaction id, new balance)."""
    balance = account["balance_cents"] + amount
    ctx.update("accounts", {"id": account["id"]}, {"balance_cents": balance})
    tx_id = ctx.insert(
        "transactions",
        {
            "account_id": account["id"],
            "posted": ctx.today,
            "kind": kind,
            "amount_cents": amount,
            "description": description,
            "balance_after_cents": balance,
            "transfer_id": transfer_id,
        },
    )
    account["balance_cents"] = balance
    return tx_id, balance


def _next_number(ctx: ToolContext, prefix: str, start: int) -> str:
    rows = ctx.all("SELECT number FROM accounts WHERE number LIKE ?", (f"{prefix}-%",))
    numbers = [int(r["number"][4:]) for r in rows if r["number"][4:].isdigit()]
    return f"{prefix}-{max(numbers, default=start) + 1}"


def _account_row(account: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_number": account["number"],
        "account_type": account["account_type"],
        "nickname": account["nickname"],
        "status": account["status"],
        "balance_cents": account["balance_cents"],
        "overdraft_limit_cents": account["overdraft_limit_cents"],
        "available_cents": account["balance_cents"] + account["overdraft_limit_cents"]
        if account["status"] == "active"
        else 0,
        "opened": account["opened"],
        "closed": account["closed"],
    }


def _transfer_row(ctx: ToolContext, t: dict[str, Any]) -> dict[str, Any]:
    row = {
        "transfer_id": t["id"],
        "from_account": ctx.scalar("SELECT number FROM accounts WHERE id = ?", (t["from_account_id"],)),
        "amount_cents": t["amount_cents"],
        "memo": t["memo"],
        "scheduled_for": t["scheduled_for"],
        "status": t["status"],
        "created": t["created"],
    }
    if t["to_account_id"] is not None:
        row["to_account"] = ctx.scalar("SELECT number FROM accounts WHERE id = ?", (t["to_account_id"],))
    else:
        payee = ctx.one("SELECT id, name FROM payees WHERE id = ?", (t["payee_id"],))
        row["to_payee"] = payee
    return row


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_customer(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Find customers whose name, email or phone contains the text (case-insensitive).

    Args:
        query: part of the customer's name, email address or phone number
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty; give part of a name, email or phone number")
    pattern = like(text)
    return ctx.all(
        "SELECT id AS customer_id, name, email, phone, kyc_status FROM customers "
        "WHERE name LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\' OR phone LIKE ? ESCAPE '\\' "
        "ORDER BY name, id LIMIT ?",
        (pattern, pattern, pattern, SEARCH_LIMIT),
    )


@tool(kind="query")
def get_customer(ctx: ToolContext, customer_id: Id) -> dict[str, Any]:
    """A customer's profile: contact details, date of birth and identity (KYC) status.

    Args:
        customer_id: the customer's id (from find_customer)
    """
    customer = _customer(ctx, customer_id)
    customer["customer_id"] = customer.pop("id")
    return customer


@tool(kind="query")
def list_accounts(ctx: ToolContext, customer_id: Id, include_closed: bool = False) -> list[dict[str, Any]]:
    """A customer's accounts with number, type, nickname, status, balance and overdraft limit.

    Args:
        customer_id: the customer's id (from find_customer)
        include_closed: also list closed accounts
    """
    _customer(ctx, customer_id)
    where = "" if include_closed else "AND status != 'closed' "
    rows = ctx.all(f"SELECT * FROM accounts WHERE customer_id = ? {where}ORDER BY id", (customer_id,))
    return [_account_row(a) for a in rows]


@tool(kind="query")
def get_account(ctx: ToolContext, account_number: Code) -> dict[str, Any]:
    """One account by number, with its owner, balance, money available and scheduled transfers out.

    Args:
        account_number: the account number, e.g. CHK-20001
    """
    account = _account(ctx, account_number)
    row = {"owner": account["owner"], "customer_id": account["customer_id"], **_account_row(account)}
    scheduled = ctx.all(
        "SELECT * FROM transfers WHERE from_account_id = ? AND status = 'scheduled' ORDER BY scheduled_for, id",
        (account["id"],),
    )
    row["scheduled_transfers"] = [_transfer_row(ctx, t) for t in scheduled]
    return row


@tool(kind="query")
def list_transactions(
    ctx: ToolContext,
    account_number: Code,
    since: DateStr | None = None,
    kind: TransactionKind | None = None,
) -> list[dict[str, Any]]:
    """An account's ledger entries, newest first: date, kind, signed amount, description, balance after.

    Args:
        account_number: the account number, e.g. CHK-20001
        since: only entries posted on or after this date (YYYY-MM-DD)
        kind: only entries of this kind
    """
    account = _account(ctx, account_number)
    sql = (
        "SELECT id AS transaction_id, posted, kind, amount_cents, description, balance_after_cents, transfer_id "
        "FROM transactions WHERE account_id = ? "
    )
    params: list[Any] = [account["id"]]
    if since is not None:
        sql += "AND posted >= ? "
        params.append(parse_date(since, "since").isoformat())
    if kind is not None:
        sql += "AND kind = ? "
        params.append(kind)
    rows = ctx.all(sql + "ORDER BY posted DESC, id DESC", params)
    disputed = {r["transaction_id"] for r in ctx.all("SELECT transaction_id FROM disputes")}
    for r in rows:
        r["disputed"] = r["transaction_id"] in disputed
    return rows


@tool(kind="query")
def list_cards(ctx: ToolContext, customer_id: Id) -> list[dict[str, Any]]:
    """A customer's debit cards: last four digits, account, status, daily limit and expiry.

    Args:
        customer_id: the customer's id (from find_customer)
    """
    _customer(ctx, customer_id)
    return ctx.all(
        "SELECT k.last4, a.number AS account_number, k.status, k.daily_limit_cents, k.issued, k.expires "
        "FROM cards k JOIN accounts a ON a.id = k.account_id WHERE a.customer_id = ? ORDER BY k.id",
        (customer_id,),
    )


@tool(kind="query")
def list_payees(ctx: ToolContext, customer_id: Id) -> list[dict[str, Any]]:
    """A customer's saved payees (external accounts they send money to).

    Args:
        customer_id: the customer's id (from find_customer)
    """
    _customer(ctx, customer_id)
    return ctx.all(
        "SELECT id AS payee_id, name, bank_name, account_number, added FROM payees WHERE customer_id = ? ORDER BY id",
        (customer_id,),
    )


@tool(kind="query")
def list_transfers(
    ctx: ToolContext,
    customer_id: Id,
    status: Literal["scheduled", "completed", "cancelled"] | None = None,
) -> list[dict[str, Any]]:
    """Transfers out of a customer's accounts, by date: amount, destination, memo and status.

    Args:
        customer_id: the customer's id (from find_customer)
        status: only transfers with this status
    """
    _customer(ctx, customer_id)
    sql = "SELECT t.* FROM transfers t JOIN accounts a ON a.id = t.from_account_id WHERE a.customer_id = ? "
    params: list[Any] = [customer_id]
    if status is not None:
        sql += "AND t.status = ? "
        params.append(status)
    return [_transfer_row(ctx, t) for t in ctx.all(sql + "ORDER BY t.scheduled_for, t.id", params)]


@tool(kind="query")
def list_disputes(ctx: ToolContext, customer_id: Id) -> list[dict[str, Any]]:
    """A customer's disputes with the disputed transaction, reason, amount and status.

    Args:
        customer_id: the customer's id (from find_customer)
    """
    _customer(ctx, customer_id)
    return ctx.all(
        "SELECT d.id AS dispute_id, d.transaction_id, x.posted, x.description, a.number AS account_number, "
        "d.reason, d.amount_cents, d.status, d.opened FROM disputes d JOIN transactions x ON x.id = d.transaction_id "
        "JOIN accounts a ON a.id = x.account_id WHERE d.customer_id = ? ORDER BY d.opened, d.id",
        (customer_id,),
    )


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def deposit(
    ctx: ToolContext, account_number: Code, amount_cents: PositiveCents, description: Note = "Cash deposit at branch"
) -> dict[str, Any]:
    """Deposit money into an active account, posted today.

    Args:
        account_number: the account to credit, e.g. CHK-20001
        amount_cents: the amount in cents (2500 = $25.00)
        description: the ledger description; "Cash deposit at branch" if left out
    """
    account = _account(ctx, account_number)
    _require_active(account, "take deposits")
    text = description.strip() or "Cash deposit at branch"
    tx_id, balance = _post(ctx, account, "deposit", amount_cents, text)
    return {"transaction_id": tx_id, "account_number": account["number"], "balance_cents": balance}


@tool(kind="mutation")
def withdraw(ctx: ToolContext, account_number: Code, amount_cents: PositiveCents) -> dict[str, Any]:
    """Pay out cash from an active account at the counter, within its balance plus overdraft limit.

    Args:
        account_number: the account to debit, e.g. CHK-20001
        amount_cents: the amount in cents (2500 = $25.00)
    """
    account = _account(ctx, account_number)
    _require_active(account, "pay out withdrawals")
    _require_funds(account, amount_cents, "pay out")
    tx_id, balance = _post(ctx, account, "withdrawal", -amount_cents, "Cash withdrawal at branch")
    return {"transaction_id": tx_id, "account_number": account["number"], "balance_cents": balance}


@tool(kind="mutation")
def transfer_funds(
    ctx: ToolContext,
    from_account: Code,
    amount_cents: PositiveCents,
    to_account: Code | None = None,
    payee_id: Id | None = None,
    scheduled_for: DateStr | None = None,
    memo: Note | None = None,
) -> dict[str, Any]:
    """Send money from an account to another Harbourline account or to one of the owner's payees.

    Give exactly one of to_account and payee_id. Without scheduled_for (or with
    today's date) the money moves now; with a future date the transfer is
    scheduled and moves on that date.

    Args:
        from_account: the account the money leaves, e.g. CHK-20001
        amount_cents: the amount in cents (2500 = $25.00)
        to_account: the receiving Harbourline account number, e.g. SAV-30001
        payee_id: the receiving payee's id (from list_payees); the payee must belong to the sender's owner
        scheduled_for: the date the money moves (YYYY-MM-DD, today or later); today if left out
        memo: a note shown on the transfer
    """
    source = _account(ctx, from_account)
    if (to_account is None) == (payee_id is None):
        raise ToolError("give exactly one destination: to_account (a Harbourline account) or payee_id")
    day = ctx.today if scheduled_for is None else parse_date(scheduled_for, "scheduled_for").isoformat()
    if day < ctx.today:
        raise ToolError(f"scheduled_for {day} is in the past; today is {ctx.today}")
    target = None
    payee = None
    if to_account is not None:
        target = _account(ctx, to_account)
        if target["id"] == source["id"]:
            raise ToolError(f"{_what(source)} cannot transfer to itself")
        destination = target["number"]
    else:
        payee = ctx.one("SELECT * FROM payees WHERE id = ?", (payee_id,))
        if payee is None:
            raise ToolError(f"no payee with id {payee_id}; see list_payees")
        if payee["customer_id"] != source["customer_id"]:
            raise ToolError(f"payee {payee_id} ({payee['name']}) is not a payee of {source['owner']}")
        destination = payee["name"]
    _require_active(source, "send transfers")
    if target is not None:
        _require_active(target, "receive transfers")
    _require_funds(source, amount_cents, "transfer")
    used = int(
        ctx.scalar(
            "SELECT COALESCE(SUM(amount_cents), 0) FROM transfers WHERE from_account_id = ? "
            "AND scheduled_for = ? AND status != 'cancelled'",
            (source["id"], day),
        )
    )
    if used + amount_cents > DAILY_TRANSFER_LIMIT_CENTS:
        raise ToolError(
            f"{_what(source)} already has {money(used, thousands=True)} of transfers dated {day}; another "
            f"{money(amount_cents, thousands=True)} would pass the "
            f"{money(DAILY_TRANSFER_LIMIT_CENTS, thousands=True)} daily transfer limit",
            rule="daily-transfer-limit",
        )
    immediate = day == ctx.today
    transfer_id = ctx.insert(
        "transfers",
        {
            "from_account_id": source["id"],
            "to_account_id": None if target is None else target["id"],
            "payee_id": None if payee is None else payee["id"],
            "amount_cents": amount_cents,
            "memo": memo.strip() if memo and memo.strip() else None,
            "scheduled_for": day,
            "status": "completed" if immediate else "scheduled",
            "created": ctx.today,
        },
    )
    out: dict[str, Any] = {
        "transfer_id": transfer_id,
        "from_account": source["number"],
        "to": destination,
        "amount_cents": amount_cents,
        "scheduled_for": day,
        "status": "completed" if immediate else "scheduled",
    }
    if immediate:
        _, out["from_balance_cents"] = _post(
            ctx, source, "transfer_out", -amount_cents, f"Transfer to {destination}", transfer_id
        )
        if target is not None:
            _post(ctx, target, "transfer_in", amount_cents, f"Transfer from {source['number']}", transfer_id)
    return out


@tool(kind="mutation")
def cancel_transfer(ctx: ToolContext, transfer_id: Id) -> dict[str, Any]:
    """Cancel a scheduled transfer before its date; completed transfers cannot be cancelled.

    Args:
        transfer_id: the transfer's id (from list_transfers or get_account)
    """
    transfer = ctx.one("SELECT * FROM transfers WHERE id = ?", (transfer_id,))
    if transfer is None:
        raise ToolError(f"no transfer with id {transfer_id}; see list_transfers")
    if transfer["status"] != "scheduled":
        raise ToolError(f"transfer {transfer_id} is already {transfer['status']}; only scheduled transfers cancel")
    ctx.update("transfers", {"id": transfer_id}, {"status": "cancelled"})
    return {**_transfer_row(ctx, transfer), "status": "cancelled"}


@tool(kind="mutation")
def set_account_status(ctx: ToolContext, account_number: Code, status: Literal["active", "frozen"]) -> dict[str, Any]:
    """Freeze an account (no money moves in or out) or unfreeze it; closed accounts stay closed.

    Args:
        account_number: the account number, e.g. CHK-20001
        status: frozen to freeze the account, active to unfreeze it
    """
    account = _account(ctx, account_number)
    if account["status"] == "closed":
        raise ToolError(f"{_what(account)} is closed and cannot be reopened or frozen", rule="account-active")
    if account["status"] == status:
        raise ToolError(f"{_what(account)} is already {status}")
    ctx.update("accounts", {"id": account["id"]}, {"status": status})
    return {"account_number": account["number"], "previous_status": account["status"], "status": status}


@tool(kind="mutation")
def open_account(
    ctx: ToolContext,
    customer_id: Id,
    account_type: AccountType,
    nickname: Name | None = None,
    overdraft_limit_cents: Cents = 0,
) -> dict[str, Any]:
    """Open a new account for a customer whose identity is verified, with a zero balance.

    Args:
        customer_id: the customer's id (from find_customer)
        account_type: checking or savings
        nickname: a name the customer gives the account, e.g. 'Holiday fund'
        overdraft_limit_cents: the overdraft limit in cents; checking only (savings have none)
    """
    customer = _customer(ctx, customer_id)
    if customer["kyc_status"] != "verified":
        raise ToolError(
            f"customer {customer['name']} has KYC status {customer['kyc_status']}; identity must be verified "
            "before opening an account",
            rule="kyc-verified",
        )
    if account_type == "savings" and overdraft_limit_cents:
        raise ToolError("savings accounts have no overdraft; leave overdraft_limit_cents out")
    number = _next_number(ctx, "CHK", 20000) if account_type == "checking" else _next_number(ctx, "SAV", 30000)
    account = {
        "customer_id": customer_id,
        "number": number,
        "account_type": account_type,
        "nickname": nickname.strip() if nickname and nickname.strip() else None,
        "status": "active",
        "balance_cents": 0,
        "overdraft_limit_cents": overdraft_limit_cents,
        "opened": ctx.today,
        "closed": None,
    }
    ctx.insert("accounts", account)
    return {"owner": customer["name"], **_account_row(account)}


@tool(kind="mutation")
def close_account(ctx: ToolContext, account_number: Code) -> dict[str, Any]:
    """Close an account whose balance is zero and which has no scheduled transfers; its cards are cancelled.

    Args:
        account_number: the account number, e.g. SAV-30002
    """
    account = _account(ctx, account_number)
    if account["status"] == "closed":
        raise ToolError(f"{_what(account)} is already closed")
    if account["balance_cents"] != 0:
        raise ToolError(
            f"{_what(account)} has a balance of {money(account['balance_cents'], thousands=True)}; it must be "
            "exactly $0.00 to close (transfer or withdraw the money first)",
            rule="close-zero-balance",
        )
    pending = ctx.scalar(
        "SELECT COUNT(*) FROM transfers WHERE from_account_id = ? AND status = 'scheduled'", (account["id"],)
    )
    if pending:
        raise ToolError(
            f"{_what(account)} still has {pending} scheduled transfer(s); cancel them before closing",
            rule="close-zero-balance",
        )
    ctx.update("accounts", {"id": account["id"]}, {"status": "closed", "closed": ctx.today})
    cards = ctx.all("SELECT last4 FROM cards WHERE account_id = ? AND status IN ('active', 'frozen')", (account["id"],))
    for card in cards:
        ctx.update("cards", {"last4": card["last4"]}, {"status": "cancelled"})
    return {
        "account_number": account["number"],
        "status": "closed",
        "closed": ctx.today,
        "cards_cancelled": [c["last4"] for c in cards],
    }


@tool(kind="mutation")
def verify_kyc(ctx: ToolContext, customer_id: Id, document: KycDocument) -> dict[str, Any]:
    """Record that a customer's identity was checked in person against a document, verifying their KYC.

    Args:
        customer_id: the customer's id (from find_customer)
        document: the identity document checked: passport, drivers_license or national_id
    """
    customer = _customer(ctx, customer_id)
    if customer["kyc_status"] == "verified":
        raise ToolError(f"customer {customer['name']} is already verified (since {customer['kyc_verified_on']})")
    ctx.update(
        "customers",
        {"id": customer_id},
        {"kyc_status": "verified", "kyc_document": document, "kyc_verified_on": ctx.today},
    )
    return {"customer_id": customer_id, "name": customer["name"], "kyc_status": "verified", "document": document}


@tool(kind="mutation")
def add_payee(ctx: ToolContext, customer_id: Id, name: Name, bank_name: Name, account_number: Code) -> dict[str, Any]:
    """Save an external account as a payee of a customer whose identity is verified.

    Args:
        customer_id: the customer's id (from find_customer)
        name: the payee's name, as the customer says it
        bank_name: the payee's bank
        account_number: the payee's account number at that bank
    """
    customer = _customer(ctx, customer_id)
    if customer["kyc_status"] != "verified":
        raise ToolError(
            f"customer {customer['name']} has KYC status {customer['kyc_status']}; identity must be verified "
            "before adding payees",
            rule="kyc-verified",
        )
    values = {"name": name.strip(), "bank_name": bank_name.strip(), "account_number": account_number.strip()}
    empty = [k for k, v in values.items() if not v]
    if empty:
        raise ToolError(f"{', '.join(empty)} is empty")
    same = ctx.one(
        "SELECT id FROM payees WHERE customer_id = ? AND upper(account_number) = upper(?) "
        "AND lower(bank_name) = lower(?)",
        (customer_id, values["account_number"], values["bank_name"]),
    )
    if same is not None:
        raise ToolError(f"{customer['name']} already has that account as payee {same['id']}")
    payee_id = ctx.insert("payees", {"customer_id": customer_id, **values, "added": ctx.today})
    return {"payee_id": payee_id, "customer": customer["name"], **values}


@tool(kind="mutation")
def set_card_status(ctx: ToolContext, card_last4: Code, status: Literal["active", "frozen"]) -> dict[str, Any]:
    """Freeze a card temporarily or unfreeze it; a lost or cancelled card cannot be reactivated.

    Args:
        card_last4: the card's last four digits, e.g. 4821
        status: frozen to freeze the card, active to unfreeze it
    """
    card = _card(ctx, card_last4)
    what = f"card ending {card['last4']} of {card['owner']}"
    if card["status"] == "lost":
        raise ToolError(
            f"{what} was reported lost and is blocked for good; issue a replacement", rule="lost-card-permanent"
        )
    if card["status"] == "cancelled":
        raise ToolError(f"{what} is cancelled and cannot be used again")
    if card["status"] == status:
        raise ToolError(f"{what} is already {status}")
    ctx.update("cards", {"id": card["id"]}, {"status": status})
    return {"card_last4": card["last4"], "previous_status": card["status"], "status": status}


@tool(kind="mutation")
def report_card_lost(ctx: ToolContext, card_last4: Code) -> dict[str, Any]:
    """Report a card lost or stolen: it is blocked for good at once.

    Args:
        card_last4: the card's last four digits, e.g. 4821
    """
    card = _card(ctx, card_last4)
    if card["status"] in ("lost", "cancelled"):
        raise ToolError(f"card ending {card['last4']} is already {card['status']}")
    ctx.update("cards", {"id": card["id"]}, {"status": "lost"})
    return {"card_last4": card["last4"], "account_number": card["account_number"], "status": "lost"}


@tool(kind="mutation")
def issue_replacement_card(ctx: ToolContext, card_last4: Code) -> dict[str, Any]:
    """Issue a new card on the same account and with the same daily limit as an old card, valid for 4 years.

    The old card is cancelled unless it is already lost or cancelled.

    Args:
        card_last4: the last four digits of the card being replaced
    """
    card = _card(ctx, card_last4)
    account = _account(ctx, card["account_number"])
    _require_active(account, "get new cards")
    if ctx.scalar(
        "SELECT COUNT(*) FROM cards WHERE account_id = ? AND status IN ('active', 'frozen') AND id != ?",
        (account["id"], card["id"]),
    ):
        raise ToolError(f"{_what(account)} already has another card in use; replace that one instead")
    taken = {r["last4"] for r in ctx.all("SELECT last4 FROM cards")}
    last4 = f"{ctx.random.randint(1000, 9999)}"
    while last4 in taken:
        last4 = f"{ctx.random.randint(1000, 9999)}"
    if card["status"] in ("active", "frozen"):
        ctx.update("cards", {"id": card["id"]}, {"status": "cancelled"})
    today = date.fromisoformat(ctx.today)
    expires = (date(today.year + CARD_YEARS, today.month % 12 + 1, 1) - timedelta(days=1)).isoformat()
    ctx.insert(
        "cards",
        {
            "account_id": account["id"],
            "last4": last4,
            "status": "active",
            "daily_limit_cents": card["daily_limit_cents"],
            "issued": ctx.today,
            "expires": expires,
        },
    )
    return {
        "new_card_last4": last4,
        "account_number": account["number"],
        "daily_limit_cents": card["daily_limit_cents"],
        "expires": expires,
        "replaced": card["last4"],
    }


@tool(kind="mutation")
def set_card_daily_limit(ctx: ToolContext, card_last4: Code, daily_limit_cents: PositiveCents) -> dict[str, Any]:
    """Change a card's daily spending limit (between $100.00 and $5,000.00).

    Args:
        card_last4: the card's last four digits, e.g. 4821
        daily_limit_cents: the new limit in cents (150000 = $1,500.00)
    """
    card = _card(ctx, card_last4)
    what = f"card ending {card['last4']} of {card['owner']}"
    if card["status"] == "lost":
        raise ToolError(f"{what} was reported lost and is blocked for good", rule="lost-card-permanent")
    if card["status"] == "cancelled":
        raise ToolError(f"{what} is cancelled")
    if not CARD_LIMIT_MIN_CENTS <= daily_limit_cents <= CARD_LIMIT_MAX_CENTS:
        raise ToolError(
            f"{money(daily_limit_cents, thousands=True)} is outside the allowed daily limit for {what}: "
            f"{money(CARD_LIMIT_MIN_CENTS, thousands=True)} to {money(CARD_LIMIT_MAX_CENTS, thousands=True)}",
            rule="card-limit-range",
        )
    ctx.update("cards", {"id": card["id"]}, {"daily_limit_cents": daily_limit_cents})
    return {
        "card_last4": card["last4"],
        "previous_limit_cents": card["daily_limit_cents"],
        "daily_limit_cents": daily_limit_cents,
    }


@tool(kind="mutation")
def file_dispute(ctx: ToolContext, transaction_id: Id, reason: DisputeReason) -> dict[str, Any]:
    """Dispute a card purchase, ATM withdrawal or fee posted in the last 60 days, for its full amount.

    Args:
        transaction_id: the disputed ledger entry's id (from list_transactions)
        reason: unauthorized, duplicate, incorrect_amount or not_received
    """
    tx = ctx.one(
        "SELECT x.*, a.customer_id, a.number FROM transactions x JOIN accounts a ON a.id = x.account_id WHERE x.id = ?",
        (transaction_id,),
    )
    if tx is None:
        raise ToolError(f"no transaction with id {transaction_id}; see list_transactions")
    what = f"transaction {transaction_id} ({tx['description']}, {tx['posted']}, account {tx['number']})"
    if tx["kind"] not in DISPUTABLE:
        raise ToolError(
            f"{what} is a {tx['kind'].replace('_', ' ')}; only card purchases, withdrawals and fees can be disputed"
        )
    earliest = (date.fromisoformat(ctx.today) - timedelta(days=DISPUTE_WINDOW_DAYS)).isoformat()
    if tx["posted"] < earliest:
        raise ToolError(
            f"{what} was posted more than {DISPUTE_WINDOW_DAYS} days ago (the window opened on {earliest})",
            rule="dispute-window",
        )
    existing = ctx.one("SELECT id, status FROM disputes WHERE transaction_id = ?", (transaction_id,))
    if existing is not None:
        raise ToolError(
            f"{what} is already disputed (dispute {existing['id']}, {existing['status']})", rule="dispute-window"
        )
    dispute_id = ctx.insert(
        "disputes",
        {
            "transaction_id": transaction_id,
            "customer_id": tx["customer_id"],
            "reason": reason,
            "amount_cents": -tx["amount_cents"],
            "status": "open",
            "opened": ctx.today,
        },
    )
    return {
        "dispute_id": dispute_id,
        "transaction_id": transaction_id,
        "reason": reason,
        "amount_cents": -tx["amount_cents"],
        "status": "open",
    }
