"""The library's tools: look-ups for members, books, copies, loans, holds and fines,
and the circulation desk's mutations.

Every rule in ``RULES`` (``__init__.py``) that can refuse a call is enforced here
and named in the ``ToolError``; the two charging rules (``overdue-fine``,
``lost-item-fee``) are applied by ``return_copy`` and ``mark_copy_lost``. Time is
the scenario clock (``ctx.today``), never the wall clock.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from envfarm.core.toolkit import (
    Code,
    DateStr,
    Email,
    Id,
    Name,
    Note,
    Phone,
    PositiveCents,
    SearchText,
    like,
    money,
    unique_email,
    update_contact,
)
from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

LOAN_DAYS = 21
RENEWAL_DAYS = 21
MAX_RENEWALS = 2
LOAN_LIMITS = {"adult": 5, "child": 3}
FINE_PER_DAY_CENTS = 25
FINE_CAP_CENTS = 1000
FINE_BLOCK_CENTS = 1000  # blocked when unpaid fines are MORE than this
PICKUP_DAYS = 7
SEARCH_LIMIT = 20


# --- helpers (not tools) -------------------------------------------------------------------------


def _plus_one_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _member(ctx: ToolContext, member_id: int) -> dict[str, Any]:
    member = ctx.one("SELECT * FROM members WHERE id = ?", (member_id,))
    if member is None:
        raise ToolError(f"no member with id {member_id}; look members up with find_member")
    return member


def _who(member: dict[str, Any]) -> str:
    return f"member {member['id']} ({member['name']})"


def _book(ctx: ToolContext, book_id: int) -> dict[str, Any]:
    book = ctx.one("SELECT * FROM books WHERE id = ?", (book_id,))
    if book is None:
        raise ToolError(f"no book with id {book_id}; look books up with search_books")
    return book


def _copy(ctx: ToolContext, barcode: str) -> dict[str, Any]:
    code = barcode.strip().upper()
    copy = ctx.one(
        "SELECT c.*, b.title, b.replacement_cents, br.name AS branch FROM copies c "
        "JOIN books b ON b.id = c.book_id JOIN branches br ON br.id = c.branch_id "
        "WHERE upper(c.barcode) = ?",
        (code,),
    )
    if copy is None:
        raise ToolError(f"no copy with barcode {barcode!r}; barcodes look like B-0007 (see list_copies)")
    return copy


def _fines_due(ctx: ToolContext, member_id: int) -> int:
    return int(
        ctx.scalar(
            "SELECT COALESCE(SUM(amount_cents - paid_cents), 0) FROM fines WHERE member_id = ? AND status = 'unpaid'",
            (member_id,),
        )
    )


def _active_loans(ctx: ToolContext, member_id: int) -> int:
    return int(ctx.scalar("SELECT COUNT(*) FROM loans WHERE member_id = ? AND status = 'active'", (member_id,)))


def _membership_problem(ctx: ToolContext, member: dict[str, Any]) -> str | None:
    if member["status"] == "suspended":
        return "the membership is suspended"
    if member["expires"] < ctx.today:
        return f"the membership expired on {member['expires']}"
    return None


def _require_good_standing(ctx: ToolContext, member: dict[str, Any], doing: str) -> None:
    """Enforce membership-active and fine-block for borrowing, renewing and holding."""
    problem = _membership_problem(ctx, member)
    if problem is not None:
        hint = "" if member["status"] == "suspended" else "; renew the membership first"
        raise ToolError(f"{_who(member)} cannot {doing}: {problem}{hint}", rule="membership-active")
    due = _fines_due(ctx, member["id"])
    if due > FINE_BLOCK_CENTS:
        raise ToolError(
            f"{_who(member)} cannot {doing}: unpaid fines total {money(due)}, more than the "
            f"{money(FINE_BLOCK_CENTS)} limit; the balance must be paid down first",
            rule="fine-block",
        )


def _queue(ctx: ToolContext, book_id: int) -> list[dict[str, Any]]:
    """Queued holds of a book, first in line first."""
    return ctx.all(
        "SELECT h.*, m.name AS member_name FROM holds h JOIN members m ON m.id = h.member_id "
        "WHERE h.book_id = ? AND h.status = 'queued' ORDER BY h.placed, h.id",
        (book_id,),
    )


def _shelve(ctx: ToolContext, copy: dict[str, Any]) -> dict[str, Any] | None:
    """Put a copy that came back into circulation where the hold queue says it goes.

    Returns the hold it now waits for on the hold shelf, or None when it went back
    to the shelves as available.
    """
    queue = _queue(ctx, copy["book_id"])
    if not queue:
        ctx.update("copies", {"id": copy["id"]}, {"status": "available"})
        return None
    first = queue[0]
    pickup_by = ctx.days_from_today(PICKUP_DAYS)
    ctx.update("holds", {"id": first["id"]}, {"status": "ready", "copy_id": copy["id"], "pickup_by": pickup_by})
    ctx.update("copies", {"id": copy["id"]}, {"status": "on_hold_shelf"})
    return {
        "hold_id": first["id"],
        "member_id": first["member_id"],
        "member_name": first["member_name"],
        "pickup_by": pickup_by,
    }


def _loan_row(ctx: ToolContext, loan: dict[str, Any]) -> dict[str, Any]:
    days = (date.fromisoformat(ctx.today) - date.fromisoformat(loan["due"])).days
    return {
        "loan_id": loan["id"],
        "barcode": loan["barcode"],
        "book_id": loan["book_id"],
        "title": loan["title"],
        "loaned": loan["loaned"],
        "due": loan["due"],
        "returned": loan["returned"],
        "renewals": loan["renewals"],
        "status": loan["status"],
        "days_overdue": max(days, 0) if loan["status"] == "active" else 0,
    }


_LOANS_SQL = (
    "SELECT l.*, c.barcode, c.book_id, b.title FROM loans l JOIN copies c ON c.id = l.copy_id "
    "JOIN books b ON b.id = c.book_id "
)


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_member(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Find members by name, card number or email.

    A card number (e.g. LIB-100004) or an email matches exactly; anything else
    matches any part of the member's name, ignoring case. Returns at most 20
    members; an empty list when nobody matches.

    Args:
        query: part of the member's name, their full card number, or their email address
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty; give part of a name, a card number or an email")
    rows = ctx.all(
        "SELECT id, card_number, name, email, phone, member_type, status, expires FROM members "
        "WHERE upper(card_number) = upper(?) OR lower(email) = lower(?) OR name LIKE ? ESCAPE '\\' "
        "ORDER BY name, id LIMIT ?",
        (text, text, like(text), SEARCH_LIMIT),
    )
    for row in rows:
        row["member_id"] = row.pop("id")
    return rows


@tool(kind="query")
def get_member_account(ctx: ToolContext, member_id: Id) -> dict[str, Any]:
    """A member's account at a glance: contact details, membership, loans, holds, fines, blocks.

    ``blocks`` lists every reason the member cannot borrow right now (empty when
    they can), so check it before a checkout, renewal or hold.

    Args:
        member_id: the member's id (from find_member)
    """
    m = _member(ctx, member_id)
    guardian = None
    if m["guardian_id"] is not None:
        g = ctx.one("SELECT id, name FROM members WHERE id = ?", (m["guardian_id"],))
        guardian = {"member_id": g["id"], "name": g["name"]} if g else None
    loans = _active_loans(ctx, member_id)
    overdue = ctx.scalar(
        "SELECT COUNT(*) FROM loans WHERE member_id = ? AND status = 'active' AND due < ?",
        (member_id, ctx.today),
    )
    holds = dict(
        ctx.db.execute(
            "SELECT status, COUNT(*) FROM holds WHERE member_id = ? AND status IN ('queued', 'ready') GROUP BY status",
            (member_id,),
        ).fetchall()
    )
    due = _fines_due(ctx, member_id)
    limit = LOAN_LIMITS[m["member_type"]]
    blocks = []
    problem = _membership_problem(ctx, m)
    if problem:
        blocks.append(problem)
    if due > FINE_BLOCK_CENTS:
        blocks.append(f"unpaid fines of {money(due)} are over the {money(FINE_BLOCK_CENTS)} limit")
    if loans >= limit:
        blocks.append(f"at the loan limit ({limit} items)")
    return {
        "member_id": m["id"],
        "card_number": m["card_number"],
        "name": m["name"],
        "email": m["email"],
        "phone": m["phone"],
        "member_type": m["member_type"],
        "status": m["status"],
        "joined": m["joined"],
        "expires": m["expires"],
        "guardian": guardian,
        "loans_out": loans,
        "loan_limit": limit,
        "loans_overdue": overdue,
        "holds_queued": holds.get("queued", 0),
        "holds_ready": holds.get("ready", 0),
        "fines_due_cents": due,
        "can_borrow": not blocks,
        "blocks": blocks,
    }


@tool(kind="query")
def search_books(
    ctx: ToolContext, query: SearchText, field: Literal["any", "title", "author", "isbn", "genre"] = "any"
) -> list[dict[str, Any]]:
    """Search the catalogue; each book comes with how many copies are available and queued holds.

    Matches any part of the title, author or genre, ignoring case; an ISBN
    matches with or without hyphens. Returns at most 20 books.

    Args:
        query: the text to look for, e.g. part of a title, an author's name, an ISBN or a genre
        field: which field to search: any (title, author, ISBN and genre), title, author, isbn or genre
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty; give part of a title, an author, an ISBN or a genre")
    digits = text.replace("-", "").replace(" ", "")
    pattern = like(text)
    where = {
        "title": ("b.title LIKE ? ESCAPE '\\'", [pattern]),
        "author": ("b.author LIKE ? ESCAPE '\\'", [pattern]),
        "genre": ("b.genre LIKE ? ESCAPE '\\'", [pattern]),
        "isbn": ("b.isbn = ?", [digits]),
        "any": (
            "(b.title LIKE ? ESCAPE '\\' OR b.author LIKE ? ESCAPE '\\' OR b.genre LIKE ? ESCAPE '\\' OR b.isbn = ?)",
            [pattern, pattern, pattern, digits],
        ),
    }[field]
    return ctx.all(
        "SELECT b.id AS book_id, b.title, b.author, b.isbn, b.year, b.genre, "
        "(SELECT COUNT(*) FROM copies c WHERE c.book_id = b.id AND c.status != 'lost') AS copies, "
        "(SELECT COUNT(*) FROM copies c WHERE c.book_id = b.id AND c.status = 'available') "
        "AS copies_available, "
        "(SELECT COUNT(*) FROM holds h WHERE h.book_id = b.id AND h.status = 'queued') AS holds_queued "
        f"FROM books b WHERE {where[0]} ORDER BY b.title, b.id LIMIT {SEARCH_LIMIT}",
        where[1],
    )


@tool(kind="query")
def list_copies(ctx: ToolContext, book_id: Id) -> dict[str, Any]:
    """A book's details and every copy of it: barcode, branch, status, and due date when on loan.

    Args:
        book_id: the book's id (from search_books)
    """
    book = _book(ctx, book_id)
    copies = ctx.all(
        "SELECT c.barcode, br.name AS branch, c.status, "
        "(SELECT l.due FROM loans l WHERE l.copy_id = c.id AND l.status = 'active') AS due "
        "FROM copies c JOIN branches br ON br.id = c.branch_id WHERE c.book_id = ? ORDER BY c.barcode",
        (book_id,),
    )
    return {
        "book_id": book["id"],
        "title": book["title"],
        "author": book["author"],
        "isbn": book["isbn"],
        "year": book["year"],
        "genre": book["genre"],
        "replacement_cents": book["replacement_cents"],
        "copies": copies,
        "copies_available": sum(c["status"] == "available" for c in copies),
        "holds_queued": len(_queue(ctx, book_id)),
    }


@tool(kind="query")
def get_copy(ctx: ToolContext, barcode: Code) -> dict[str, Any]:
    """One copy by barcode: its book, branch and status, who has it on loan, or whose hold it waits for.

    Args:
        barcode: the copy's barcode, e.g. B-0007
    """
    copy = _copy(ctx, barcode)
    loan = ctx.one(
        "SELECT l.id AS loan_id, l.member_id, m.name AS member_name, l.loaned, l.due, l.renewals, "
        "l.status FROM loans l JOIN members m ON m.id = l.member_id "
        "WHERE l.copy_id = ? AND l.status IN ('active', 'lost')",
        (copy["id"],),
    )
    hold = ctx.one(
        "SELECT h.id AS hold_id, h.member_id, m.name AS member_name, h.pickup_by FROM holds h "
        "JOIN members m ON m.id = h.member_id WHERE h.copy_id = ? AND h.status = 'ready'",
        (copy["id"],),
    )
    return {
        "barcode": copy["barcode"],
        "book_id": copy["book_id"],
        "title": copy["title"],
        "branch": copy["branch"],
        "status": copy["status"],
        "loan": loan,
        "waiting_for_hold": hold,
    }


@tool(kind="query")
def list_member_loans(ctx: ToolContext, member_id: Id, include_past: bool = False) -> list[dict[str, Any]]:
    """A member's loans with barcode, title, due date, renewals so far and days overdue.

    Args:
        member_id: the member's id (from find_member)
        include_past: also list returned and lost loans, not only the ones currently out
    """
    _member(ctx, member_id)
    status = "" if include_past else "AND l.status = 'active' "
    loans = ctx.all(f"{_LOANS_SQL}WHERE l.member_id = ? {status}ORDER BY l.due, l.id", (member_id,))
    return [_loan_row(ctx, loan) for loan in loans]


@tool(kind="query")
def list_member_holds(ctx: ToolContext, member_id: Id, include_past: bool = False) -> list[dict[str, Any]]:
    """A member's holds: queue position while queued, or the barcode and pickup date once ready.

    Args:
        member_id: the member's id (from find_member)
        include_past: also list fulfilled and cancelled holds, not only queued and ready ones
    """
    _member(ctx, member_id)
    status = "" if include_past else "AND h.status IN ('queued', 'ready') "
    holds = ctx.all(
        "SELECT h.id, h.book_id, b.title, h.placed, h.status, c.barcode, h.pickup_by, h.closed "
        "FROM holds h JOIN books b ON b.id = h.book_id LEFT JOIN copies c ON c.id = h.copy_id "
        f"WHERE h.member_id = ? {status}ORDER BY h.placed, h.id",
        (member_id,),
    )
    out = []
    for h in holds:
        row = {"hold_id": h.pop("id"), **h}
        if h["status"] == "queued":
            row["position"] = [q["id"] for q in _queue(ctx, h["book_id"])].index(row["hold_id"]) + 1
        out.append(row)
    return out


@tool(kind="query")
def list_hold_queue(ctx: ToolContext, book_id: Id) -> list[dict[str, Any]]:
    """The open holds on a book: who waits, in queue order, and whose copy is on the hold shelf.

    Args:
        book_id: the book's id (from search_books)
    """
    _book(ctx, book_id)
    ready = ctx.all(
        "SELECT h.id AS hold_id, h.member_id, m.name AS member_name, h.placed, h.status, "
        "c.barcode, h.pickup_by FROM holds h JOIN members m ON m.id = h.member_id "
        "JOIN copies c ON c.id = h.copy_id WHERE h.book_id = ? AND h.status = 'ready' "
        "ORDER BY h.placed, h.id",
        (book_id,),
    )
    queued = [
        {
            "hold_id": h["id"],
            "member_id": h["member_id"],
            "member_name": h["member_name"],
            "placed": h["placed"],
            "status": "queued",
            "position": i,
        }
        for i, h in enumerate(_queue(ctx, book_id), start=1)
    ]
    return ready + queued


@tool(kind="query")
def list_member_fines(ctx: ToolContext, member_id: Id, include_settled: bool = False) -> list[dict[str, Any]]:
    """A member's fines with the amount, what is paid, the balance still owed and the reason.

    Args:
        member_id: the member's id (from find_member)
        include_settled: also list fines already paid or waived, not only unpaid ones
    """
    _member(ctx, member_id)
    status = "" if include_settled else "AND f.status = 'unpaid' "
    fines = ctx.all(
        "SELECT f.id AS fine_id, f.reason, f.amount_cents, f.paid_cents, "
        "CASE WHEN f.status = 'unpaid' THEN f.amount_cents - f.paid_cents ELSE 0 END AS balance_cents, "
        "f.status, f.created, f.loan_id, b.title, f.note FROM fines f "
        "LEFT JOIN loans l ON l.id = f.loan_id LEFT JOIN copies c ON c.id = l.copy_id "
        f"LEFT JOIN books b ON b.id = c.book_id WHERE f.member_id = ? {status}ORDER BY f.created, f.id",
        (member_id,),
    )
    return fines


@tool(kind="query")
def list_overdue_loans(
    ctx: ToolContext, branch: Name | None = None, as_of: DateStr | None = None
) -> list[dict[str, Any]]:
    """Loans still out past their due date, with the borrower and the fine accrued so far.

    Args:
        branch: only copies belonging to this branch (Central, Riverside or Northgate); all branches if left out
        as_of: count a loan as overdue when its due date is before this date (YYYY-MM-DD); today if left out
    """
    day = ctx.today if as_of is None else parse_date(as_of, "as_of").isoformat()
    params: list[Any] = [day]
    where = ""
    if branch is not None:
        branch_id = ctx.scalar("SELECT id FROM branches WHERE lower(name) = lower(?)", (branch.strip(),))
        if branch_id is None:
            names = [r["name"] for r in ctx.all("SELECT name FROM branches ORDER BY id")]
            raise ToolError(f"no branch named {branch!r}; branches are {', '.join(names)}")
        where = "AND c.branch_id = ? "
        params.append(branch_id)
    rows = ctx.all(
        "SELECT l.id AS loan_id, c.barcode, b.title, br.name AS branch, l.member_id, "
        "m.name AS member_name, l.due FROM loans l JOIN copies c ON c.id = l.copy_id "
        "JOIN books b ON b.id = c.book_id JOIN branches br ON br.id = c.branch_id "
        "JOIN members m ON m.id = l.member_id "
        f"WHERE l.status = 'active' AND l.due < ? {where}ORDER BY l.due, l.id",
        params,
    )
    for row in rows:
        days = (date.fromisoformat(day) - date.fromisoformat(row["due"])).days
        row["days_overdue"] = days
        row["fine_so_far_cents"] = min(days * FINE_PER_DAY_CENTS, FINE_CAP_CENTS)
    return rows


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def checkout_copy(ctx: ToolContext, member_id: Id, barcode: Code) -> dict[str, Any]:
    """Lend a copy to a member for 21 days.

    The copy must be available, or waiting on the hold shelf for this member's
    hold (which is then fulfilled). The member must be in good standing and
    under their loan limit.

    Args:
        member_id: the borrowing member's id (from find_member)
        barcode: the barcode of the copy to lend, e.g. B-0007
    """
    member = _member(ctx, member_id)
    copy = _copy(ctx, barcode)
    _require_good_standing(ctx, member, "check out items")
    limit = LOAN_LIMITS[member["member_type"]]
    if _active_loans(ctx, member_id) >= limit:
        raise ToolError(
            f"{_who(member)} already has {limit} items on loan, the limit for a {member['member_type']} "
            "member; an item must be returned first",
            rule="loan-limit",
        )
    what = f"copy {copy['barcode']} ({copy['title']!r})"
    hold = None
    if copy["status"] == "on_hold_shelf":
        hold = ctx.one("SELECT * FROM holds WHERE copy_id = ? AND status = 'ready'", (copy["id"],))
        if hold is not None and hold["member_id"] != member_id:
            raise ToolError(
                f"{what} is on the hold shelf for hold {hold['id']} of another member; only that "
                "member can check it out",
                rule="hold-queue",
            )
    elif copy["status"] == "on_loan":
        raise ToolError(f"{what} is already on loan; it must be returned before it can be lent again")
    elif copy["status"] == "lost":
        raise ToolError(f"{what} is marked lost; check it in with return_copy if it has been found")
    due = ctx.days_from_today(LOAN_DAYS)
    loan_id = ctx.insert(
        "loans",
        {
            "copy_id": copy["id"],
            "member_id": member_id,
            "loaned": ctx.today,
            "due": due,
            "renewals": 0,
            "status": "active",
        },
    )
    ctx.update("copies", {"id": copy["id"]}, {"status": "on_loan"})
    if hold is None:  # a queued hold of this member on the same book is served by this loan too
        hold = ctx.one(
            "SELECT * FROM holds WHERE member_id = ? AND book_id = ? AND status = 'queued' ORDER BY placed, id",
            (member_id, copy["book_id"]),
        )
    if hold is not None:
        ctx.update("holds", {"id": hold["id"]}, {"status": "fulfilled", "closed": ctx.today})
    return {
        "loan_id": loan_id,
        "member_id": member_id,
        "member_name": member["name"],
        "barcode": copy["barcode"],
        "title": copy["title"],
        "loaned": ctx.today,
        "due": due,
        "hold_fulfilled": None if hold is None else hold["id"],
    }


@tool(kind="mutation")
def return_copy(ctx: ToolContext, barcode: Code) -> dict[str, Any]:
    """Check a copy in, dated today.

    A late return is charged 25 cents per day late (at most $10.00) as a new
    fine. The copy then goes to the hold shelf for the first queued hold on its
    book, or back to the shelves as available. A copy that was reported lost can
    be checked in too: its unpaid replacement fee is cancelled.

    Args:
        barcode: the barcode of the copy being returned, e.g. B-0007
    """
    copy = _copy(ctx, barcode)
    loan = ctx.one("SELECT * FROM loans WHERE copy_id = ? AND status IN ('active', 'lost')", (copy["id"],))
    what = f"copy {copy['barcode']} ({copy['title']!r})"
    if loan is None:
        if copy["status"] != "lost":
            raise ToolError(f"{what} is not on loan (status {copy['status']}); there is nothing to check in")
        waiting = _shelve(ctx, copy)  # a copy missing from the shelves turned up again
        return {
            "barcode": copy["barcode"],
            "title": copy["title"],
            "loan_id": None,
            "copy_status": "on_hold_shelf" if waiting else "available",
            "waiting_for_hold": waiting,
        }
    days_late = max((date.fromisoformat(ctx.today) - date.fromisoformat(loan["due"])).days, 0)
    fine_cents = min(days_late * FINE_PER_DAY_CENTS, FINE_CAP_CENTS)
    ctx.update("loans", {"id": loan["id"]}, {"status": "returned", "returned": ctx.today})
    fine_id = None
    if fine_cents:
        fine_id = ctx.insert(
            "fines",
            {
                "member_id": loan["member_id"],
                "loan_id": loan["id"],
                "reason": "overdue",
                "amount_cents": fine_cents,
                "paid_cents": 0,
                "status": "unpaid",
                "created": ctx.today,
                "note": f"{copy['title']} returned {days_late} day(s) late",
            },
        )
    fee_cancelled = None
    if loan["status"] == "lost":
        fee = ctx.one(
            "SELECT * FROM fines WHERE loan_id = ? AND reason = 'lost_item' AND status = 'unpaid' AND paid_cents = 0",
            (loan["id"],),
        )
        if fee is not None:
            ctx.update("fines", {"id": fee["id"]}, {"status": "waived", "note": "item found and returned"})
            fee_cancelled = fee["id"]
    waiting = _shelve(ctx, copy)
    member = ctx.one("SELECT name FROM members WHERE id = ?", (loan["member_id"],))
    return {
        "barcode": copy["barcode"],
        "title": copy["title"],
        "loan_id": loan["id"],
        "member_id": loan["member_id"],
        "member_name": member["name"] if member else None,
        "due": loan["due"],
        "returned": ctx.today,
        "days_overdue": days_late,
        "fine_cents": fine_cents,
        "fine_id": fine_id,
        "replacement_fee_cancelled": fee_cancelled,
        "copy_status": "on_hold_shelf" if waiting else "available",
        "waiting_for_hold": waiting,
    }


@tool(kind="mutation")
def renew_loan(ctx: ToolContext, loan_id: Id) -> dict[str, Any]:
    """Renew a loan: its due date moves 21 days later.

    Refused for an overdue loan, after two renewals, when another member has a
    queued hold on the book, or when the member is not in good standing.

    Args:
        loan_id: the loan's id (from list_member_loans)
    """
    loan = ctx.one(f"{_LOANS_SQL}WHERE l.id = ?", (loan_id,))
    if loan is None:
        raise ToolError(f"no loan with id {loan_id}; see list_member_loans")
    what = f"loan {loan_id} ({loan['title']!r}, copy {loan['barcode']})"
    if loan["status"] != "active":
        raise ToolError(f"{what} is not out any more (status {loan['status']}); only active loans renew")
    member = _member(ctx, loan["member_id"])
    _require_good_standing(ctx, member, "renew loans")
    if loan["due"] < ctx.today:
        raise ToolError(
            f"{what} was due on {loan['due']} and is overdue; it cannot be renewed, only returned",
            rule="renewal-overdue",
        )
    if loan["renewals"] >= MAX_RENEWALS:
        raise ToolError(f"{what} has already been renewed {loan['renewals']} times, the maximum", rule="renewal-limit")
    waiting = [h for h in _queue(ctx, loan["book_id"]) if h["member_id"] != loan["member_id"]]
    if waiting:
        raise ToolError(
            f"{what} cannot be renewed: {len(waiting)} other member(s) have a queued hold on {loan['title']!r}",
            rule="renewal-hold-conflict",
        )
    due = (date.fromisoformat(loan["due"]) + timedelta(days=RENEWAL_DAYS)).isoformat()
    ctx.update("loans", {"id": loan_id}, {"due": due, "renewals": loan["renewals"] + 1})
    return {
        "loan_id": loan_id,
        "barcode": loan["barcode"],
        "title": loan["title"],
        "previous_due": loan["due"],
        "due": due,
        "renewals": loan["renewals"] + 1,
        "renewals_left": MAX_RENEWALS - loan["renewals"] - 1,
    }


@tool(kind="mutation")
def place_hold(ctx: ToolContext, member_id: Id, book_id: Id) -> dict[str, Any]:
    """Put a member in the hold queue for a book that has no copy available right now.

    When a copy comes back it waits on the hold shelf for the first member in
    the queue for 7 days.

    Args:
        member_id: the member's id (from find_member)
        book_id: the book's id (from search_books)
    """
    member = _member(ctx, member_id)
    book = _book(ctx, book_id)
    _require_good_standing(ctx, member, "place holds")
    title = repr(book["title"])
    on_loan = ctx.one(
        "SELECT c.barcode FROM loans l JOIN copies c ON c.id = l.copy_id "
        "WHERE l.member_id = ? AND c.book_id = ? AND l.status = 'active'",
        (member_id, book_id),
    )
    if on_loan is not None:
        raise ToolError(
            f"{_who(member)} already has {title} on loan (copy {on_loan['barcode']})", rule="hold-duplicate"
        )
    held = ctx.one(
        "SELECT id, status FROM holds WHERE member_id = ? AND book_id = ? AND status IN ('queued', 'ready')",
        (member_id, book_id),
    )
    if held is not None:
        raise ToolError(
            f"{_who(member)} already has hold {held['id']} ({held['status']}) on {title}",
            rule="hold-duplicate",
        )
    copies = ctx.all(
        "SELECT c.barcode, c.status, br.name AS branch FROM copies c "
        "JOIN branches br ON br.id = c.branch_id WHERE c.book_id = ? AND c.status != 'lost' ORDER BY c.id",
        (book_id,),
    )
    if not copies:
        raise ToolError(f"{title} has no copies in circulation, so there is nothing to wait for")
    available = [c for c in copies if c["status"] == "available"]
    if available:
        where = ", ".join(f"{c['barcode']} at {c['branch']}" for c in available)
        raise ToolError(
            f"{title} has a copy available ({where}); check it out instead of placing a hold",
            rule="hold-when-unavailable",
        )
    hold_id = ctx.insert("holds", {"book_id": book_id, "member_id": member_id, "placed": ctx.today, "status": "queued"})
    position = [h["id"] for h in _queue(ctx, book_id)].index(hold_id) + 1
    return {
        "hold_id": hold_id,
        "member_id": member_id,
        "book_id": book_id,
        "title": book["title"],
        "placed": ctx.today,
        "status": "queued",
        "position": position,
    }


@tool(kind="mutation")
def cancel_hold(ctx: ToolContext, hold_id: Id) -> dict[str, Any]:
    """Cancel a queued or ready hold.

    When the hold was ready, its copy passes to the next member in the queue (or
    back to the shelves when nobody else is waiting).

    Args:
        hold_id: the hold's id (from list_member_holds or list_hold_queue)
    """
    hold = ctx.one("SELECT h.*, b.title FROM holds h JOIN books b ON b.id = h.book_id WHERE h.id = ?", (hold_id,))
    if hold is None:
        raise ToolError(f"no hold with id {hold_id}; see list_member_holds")
    if hold["status"] not in ("queued", "ready"):
        raise ToolError(f"hold {hold_id} on {hold['title']!r} is already {hold['status']}")
    ctx.update("holds", {"id": hold_id}, {"status": "cancelled", "closed": ctx.today})
    passed_to = None
    barcode = None
    if hold["status"] == "ready" and hold["copy_id"] is not None:
        copy = ctx.one("SELECT * FROM copies WHERE id = ?", (hold["copy_id"],))
        if copy is None:
            raise ToolError(f"hold {hold_id} is ready with copy id {hold['copy_id']}, but no copy has that id")
        barcode = copy["barcode"]
        passed_to = _shelve(ctx, copy)
    return {
        "hold_id": hold_id,
        "title": hold["title"],
        "status": "cancelled",
        "released_copy": barcode,
        "copy_now_waiting_for": passed_to,
    }


@tool(kind="mutation")
def pay_fine(
    ctx: ToolContext, fine_id: Id, amount_cents: PositiveCents, method: Literal["cash", "card"]
) -> dict[str, Any]:
    """Take a payment towards one fine: the whole balance or part of it.

    Args:
        fine_id: the fine's id (from list_member_fines)
        amount_cents: how much is paid, in cents (250 = $2.50); at most the fine's balance
        method: how the member pays: cash or card
    """
    fine = ctx.one("SELECT * FROM fines WHERE id = ?", (fine_id,))
    if fine is None:
        raise ToolError(f"no fine with id {fine_id}; see list_member_fines")
    if fine["status"] != "unpaid":
        raise ToolError(f"fine {fine_id} is already {fine['status']}; nothing is owed on it")
    balance = fine["amount_cents"] - fine["paid_cents"]
    if amount_cents > balance:
        raise ToolError(
            f"{amount_cents} cents is more than the {balance} cents ({money(balance)}) still owed on fine {fine_id}"
        )
    payment_id = ctx.insert(
        "payments",
        {
            "fine_id": fine_id,
            "member_id": fine["member_id"],
            "amount_cents": amount_cents,
            "method": method,
            "paid_on": ctx.today,
        },
    )
    paid = fine["paid_cents"] + amount_cents
    status = "paid" if paid == fine["amount_cents"] else "unpaid"
    ctx.update("fines", {"id": fine_id}, {"paid_cents": paid, "status": status})
    return {
        "payment_id": payment_id,
        "fine_id": fine_id,
        "paid_cents": paid,
        "balance_cents": fine["amount_cents"] - paid,
        "status": status,
        "member_fines_due_cents": _fines_due(ctx, fine["member_id"]),
    }


@tool(kind="mutation")
def waive_fine(ctx: ToolContext, fine_id: Id, reason: Note) -> dict[str, Any]:
    """Waive what is still owed on an overdue fine, as a librarian approved; the reason is recorded.

    Replacement fees for lost items cannot be waived.

    Args:
        fine_id: the fine's id (from list_member_fines)
        reason: why the fine is waived and who approved it, recorded on the fine
    """
    fine = ctx.one("SELECT * FROM fines WHERE id = ?", (fine_id,))
    if fine is None:
        raise ToolError(f"no fine with id {fine_id}; see list_member_fines")
    if fine["status"] != "unpaid":
        raise ToolError(f"fine {fine_id} is already {fine['status']}; there is nothing to waive")
    if fine["reason"] != "overdue":
        raise ToolError(
            f"fine {fine_id} is a {fine['reason'].replace('_', ' ')} replacement fee, which cannot be "
            "waived; it is cancelled only if the item is returned",
            rule="waive-overdue-only",
        )
    if not reason.strip():
        raise ToolError(f"a reason is required to waive fine {fine_id}", rule="waive-overdue-only")
    ctx.update("fines", {"id": fine_id}, {"status": "waived", "note": reason.strip()})
    return {
        "fine_id": fine_id,
        "status": "waived",
        "waived_cents": fine["amount_cents"] - fine["paid_cents"],
        "member_fines_due_cents": _fines_due(ctx, fine["member_id"]),
    }


@tool(kind="mutation")
def register_member(
    ctx: ToolContext,
    name: Name,
    member_type: Literal["adult", "child"],
    email: Email | None = None,
    phone: Phone | None = None,
    guardian_member_id: Id | None = None,
) -> dict[str, Any]:
    """Register a new member and issue a library card valid for one year.

    A child member needs an adult member in good standing as guardian. An adult
    needs an email or a phone number.

    Args:
        name: the new member's full name
        member_type: adult, or child (under 16)
        email: the member's email address, unique among members
        phone: the member's phone number
        guardian_member_id: for a child, the member id of the adult guardian (from find_member)
    """
    name = name.strip()
    if not name:
        raise ToolError("name is empty")
    if email is not None:
        email = unique_email(ctx, "members", email, None, "member", "unique-email")
    if member_type == "child":
        if guardian_member_id is None:
            raise ToolError("a child member needs a guardian: give guardian_member_id", rule="child-guardian")
        guardian = _member(ctx, guardian_member_id)
        if guardian["member_type"] != "adult":
            raise ToolError(f"{_who(guardian)} is a child member and cannot be a guardian", rule="child-guardian")
        problem = _membership_problem(ctx, guardian)
        if problem is not None:
            raise ToolError(f"{_who(guardian)} cannot be a guardian: {problem}", rule="child-guardian")
    else:
        if guardian_member_id is not None:
            raise ToolError("only child members have a guardian; leave guardian_member_id out for an adult")
        if email is None and not (phone or "").strip():
            raise ToolError("an adult member needs an email or a phone number")
    numbers = [int(c[4:]) for (c,) in ctx.db.execute("SELECT card_number FROM members") if c[4:].isdigit()]
    card = f"LIB-{max(numbers, default=100000) + 1}"
    expires = _plus_one_year(date.fromisoformat(ctx.today)).isoformat()
    member_id = ctx.insert(
        "members",
        {
            "card_number": card,
            "name": name,
            "email": email,
            "phone": phone.strip() if phone and phone.strip() else None,
            "member_type": member_type,
            "status": "active",
            "guardian_id": guardian_member_id,
            "joined": ctx.today,
            "expires": expires,
        },
    )
    return {
        "member_id": member_id,
        "card_number": card,
        "name": name,
        "member_type": member_type,
        "expires": expires,
        "loan_limit": LOAN_LIMITS[member_type],
    }


@tool(kind="mutation")
def update_member_contact(
    ctx: ToolContext, member_id: Id, email: Email | None = None, phone: Phone | None = None
) -> dict[str, Any]:
    """Change a member's email address and/or phone number.

    Args:
        member_id: the member's id (from find_member)
        email: the new email address (unique among members); unchanged if left out
        phone: the new phone number; unchanged if left out
    """
    member = _member(ctx, member_id)
    contact = update_contact(ctx, "members", member, email, phone, noun="member", rule="unique-email")
    return {"member_id": member_id, **contact}


@tool(kind="mutation")
def renew_membership(ctx: ToolContext, member_id: Id) -> dict[str, Any]:
    """Extend a membership by one year, from its expiry date or from today if it already expired.

    A suspended membership cannot be renewed at the desk.

    Args:
        member_id: the member's id (from find_member)
    """
    member = _member(ctx, member_id)
    if member["status"] == "suspended":
        raise ToolError(
            f"{_who(member)} is suspended; a suspended membership cannot be renewed at the desk",
            rule="membership-active",
        )
    start = max(date.fromisoformat(member["expires"]), date.fromisoformat(ctx.today))
    expires = _plus_one_year(start).isoformat()
    ctx.update("members", {"id": member_id}, {"expires": expires})
    return {
        "member_id": member_id,
        "name": member["name"],
        "previous_expires": member["expires"],
        "expires": expires,
    }


@tool(kind="mutation")
def mark_copy_lost(ctx: ToolContext, barcode: Code) -> dict[str, Any]:
    """Record a copy as lost.

    For a copy on loan (the borrower reports it lost) the loan ends and the
    borrower is charged the book's replacement cost. A copy missing from the
    shelves is taken out of circulation without a charge.

    Args:
        barcode: the lost copy's barcode, e.g. B-0007
    """
    copy = _copy(ctx, barcode)
    what = f"copy {copy['barcode']} ({copy['title']!r})"
    if copy["status"] == "lost":
        raise ToolError(f"{what} is already marked lost")
    if copy["status"] == "on_hold_shelf":
        raise ToolError(f"{what} is waiting on the hold shelf; cancel that hold before marking it lost")
    ctx.update("copies", {"id": copy["id"]}, {"status": "lost"})
    loan = ctx.one("SELECT * FROM loans WHERE copy_id = ? AND status = 'active'", (copy["id"],))
    if loan is None:
        return {"barcode": copy["barcode"], "title": copy["title"], "status": "lost", "charged": None}
    ctx.update("loans", {"id": loan["id"]}, {"status": "lost"})
    fine_id = ctx.insert(
        "fines",
        {
            "member_id": loan["member_id"],
            "loan_id": loan["id"],
            "reason": "lost_item",
            "amount_cents": copy["replacement_cents"],
            "paid_cents": 0,
            "status": "unpaid",
            "created": ctx.today,
            "note": f"replacement for {copy['title']} ({copy['barcode']})",
        },
    )
    return {
        "barcode": copy["barcode"],
        "title": copy["title"],
        "status": "lost",
        "loan_id": loan["id"],
        "charged": {
            "member_id": loan["member_id"],
            "fine_id": fine_id,
            "amount_cents": copy["replacement_cents"],
        },
        "member_fines_due_cents": _fines_due(ctx, loan["member_id"]),
    }
