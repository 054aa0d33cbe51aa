"""Airline booking desk: passengers, flights, cabins, bookings, checked bags and payments.

An agent acts as a Quill Air reservations agent, looking passengers up by name,
loyalty number or email and bookings up by record locator, and booking,
rebooking, upgrading, seating, checking in and cancelling under the fare rules
below, which the tools enforce and name when they refuse a call.
"""

TITLE = "Airline booking desk"

DESCRIPTION = (
    "You are a reservations agent of Quill Air (flight numbers QX101 and so on). Passengers have "
    "a loyalty number such as FF-10001 and a tier (member, silver, gold or platinum); each booking "
    "holds one passenger on one flight, in the economy or business cabin, on a basic, standard or "
    "flex fare, and is identified by a six-character record locator such as QX7K2P. Use the tools to "
    "look passengers, flights and bookings up, then book flights, move bookings to another flight, "
    "upgrade to business, assign seats, check passengers in, add checked bags, cancel bookings "
    "and update contact details. Money is in integer cents (7500 = $75.00); dates are YYYY-MM-DD "
    "and departure times are UTC. The current time is the airline's clock, which the tools use for "
    "check-in windows and refunds. The tools refuse anything the fare rules forbid and say which "
    "rule; explain such a refusal to the passenger rather than working around it."
)

RULES = {
    "cabin-capacity": (
        "A cabin of a flight holds at most its capacity in confirmed and checked-in bookings; a full "
        "cabin cannot be booked, changed or upgraded into."
    ),
    "one-seat-per-flight": "A passenger may hold at most one active booking on any one flight.",
    "basic-fare-locked": (
        "A basic fare cannot be moved to another flight or upgraded, unless the airline cancelled its flight."
    ),
    "change-fee": (
        "Moving a booking to another flight costs a $75.00 change fee on a standard fare and nothing on "
        "a flex fare, plus the fare difference when the new flight's fare is higher; both are waived "
        "when the airline cancelled the original flight."
    ),
    "same-route": "A booking can only be moved to a flight with the same origin and destination.",
    "cancellation-refund": (
        "Cancelling 24 hours or more before departure refunds the whole fare of a flex booking, the fare "
        "less a $100.00 fee of a standard booking and nothing of a basic one; cancelling less than 24 "
        "hours before departure refunds nothing, a booking on a flight the airline cancelled is refunded "
        "in full, and bag fees are never refunded."
    ),
    "no-changes-after-check-in": ("A checked-in booking cannot be moved, upgraded, re-seated or cancelled."),
    "flight-open": (
        "Nothing can be booked, changed, seated, checked in or added on a flight that has departed, whose "
        "departure time has passed or that the airline cancelled (a booking on a cancelled flight can "
        "still be moved to another flight or cancelled)."
    ),
    "check-in-window": "Check-in opens 24 hours before departure and closes 45 minutes before it.",
    "bag-allowance": (
        "Checked bags are free up to the passenger's tier allowance (member 0, silver 1, gold 2, "
        "platinum 3) and cost $35.00 each beyond it; a booking may have at most 5 checked bags."
    ),
    "bag-weight-limit": "A checked bag may weigh at most 32 kg.",
    "seat-assignment": (
        "A seat must lie in the booking's cabin (business rows 1-4, seats A-D; economy rows 10-35, "
        "seats A-F) and may be held by only one booking on a flight."
    ),
    "unique-email": "No two passengers may share an email address.",
}
