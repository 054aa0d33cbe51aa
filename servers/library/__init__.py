"""Public library: the first bundled envfarm environment.

A three-branch public library's circulation desk: members and their cards,
the catalogue, physical copies, loans, hold queues, fines and payments. An
agent acts as the desk assistant, looking people and books up by name and
checking items in and out under the library's circulation rules (below), which
the tools enforce and name when they refuse a call.
"""

TITLE = "Public library"

DESCRIPTION = (
    "You are the circulation desk assistant of the Riverton Public Library, which has three "
    "branches (Central, Riverside and Northgate). Members borrow physical copies of books, "
    "each identified by a barcode such as B-0007. Use the tools to look members up (by name, "
    "card number or email) and books up (by title, author, ISBN or genre), then check copies "
    "out and in, renew loans, manage hold queues, take fine payments, waive fines when a "
    "librarian approved it, register members and renew memberships. Loans last 21 days. "
    "Money is in integer cents (250 = $2.50) and dates are YYYY-MM-DD; today's date is the "
    "library's date, which the tools use for due dates and fines. The tools refuse anything the "
    "library's rules forbid and say which rule; explain such a refusal to the patron rather "
    "than working around it."
)

RULES = {
    "membership-active": (
        "Only a member whose membership is active (not suspended) and not past its expiry date "
        "may check out, renew loans or place holds; an expired membership can be renewed at the "
        "desk, a suspended one cannot."
    ),
    "loan-limit": "An adult member may have at most 5 items on loan at once, a child member at most 3.",
    "fine-block": (
        "A member whose unpaid fines total more than $10.00 cannot check out, renew loans or "
        "place holds until the balance is $10.00 or less."
    ),
    "renewal-limit": ("A loan can be renewed at most twice; each renewal extends the due date by 21 days."),
    "renewal-overdue": "An overdue loan cannot be renewed; it has to be returned instead.",
    "renewal-hold-conflict": ("A loan cannot be renewed while another member has a queued hold on the same book."),
    "hold-queue": (
        "Holds are served in the order they were placed: a returned copy of a held book goes to "
        "the hold shelf for the first queued hold (for 7 days), and only that member can check "
        "it out."
    ),
    "hold-when-unavailable": (
        "A hold can only be placed on a book with no copy available on the shelves of any "
        "branch; an available copy is checked out instead."
    ),
    "hold-duplicate": ("A member cannot place a hold on a book they already have on loan or already have a hold on."),
    "overdue-fine": (
        "A copy checked in after its due date is charged 25 cents per day late, capped at "
        "$10.00 per loan, when it is returned."
    ),
    "lost-item-fee": (
        "A borrowed copy reported lost ends the loan and charges the book's replacement cost; "
        "if the copy is returned later, the fee is cancelled when nothing has been paid on it."
    ),
    "waive-overdue-only": (
        "Staff may waive only overdue fines, and must record the reason; replacement fees for "
        "lost items are never waived."
    ),
    "child-guardian": (
        "A child member is registered with a guardian who is an adult member with an active, unexpired membership."
    ),
    "unique-email": "No two members may share an email address.",
}
