"""Restaurant reservations: guests, dining tables, services, bookings, waitlist and pre-orders.

The host stand of a single restaurant. An agent acts as the reservations host,
looking guests up by name, phone or email, finding free tables and booking,
moving and cancelling reservations under the house rules (below), which the
tools enforce and name when they refuse a call.
"""

TITLE = "Restaurant reservations"

DESCRIPTION = (
    "You are the reservations host of Trattoria Aurora, a restaurant with tables in four areas "
    "(main room, terrace, bar and a private room), each labelled like T4, P1 or B2. Use the tools to "
    "look guests up (by name, phone or email), check the opening hours and free tables, book, move "
    "and cancel reservations, keep the waitlist, record special requests and take pre-orders from "
    "the menu. Every reservation holds its table for a 2-hour turn. Dates are YYYY-MM-DD, times are "
    "24-hour HH:MM in the restaurant's local time, and money is in integer cents (2000 = $20.00); "
    "'now' is the restaurant's clock, which the tools use for every time rule. The tools refuse "
    "anything the house rules forbid and say which rule; explain such a refusal to the guest rather "
    "than working around it."
)

RULES = {
    "table-capacity": "A party may only be seated at a table with at least as many seats as guests.",
    "no-overlap": (
        "A table holds one party per 2-hour turn: two live reservations on the same table and date "
        "must start at least 2 hours apart."
    ),
    "large-party-deposit": (
        "A party of 8 or more must pay a deposit of $20.00 per guest (by card or cash) when it is "
        "booked or grows to 8 or more."
    ),
    "opening-hours": (
        "A reservation must start in the future and within a service (lunch or dinner) of its day, "
        "so that its whole 2-hour turn ends by the service's closing time; the restaurant is closed "
        "on Mondays."
    ),
    "guest-reservation-limit": "A guest may hold at most 2 upcoming (booked, not yet started) reservations at once.",
    "private-room-vip": "Tables in the private room can only be booked for VIP guests.",
    "waitlist-order": (
        "The waitlist for a date is served in the order guests joined it: a freed table goes to the "
        "earliest waiting party that fits it."
    ),
    "late-cancellation-forfeit": (
        "A reservation cancelled less than 24 hours before it starts forfeits its deposit; cancelled "
        "earlier, the deposit is refunded."
    ),
}
