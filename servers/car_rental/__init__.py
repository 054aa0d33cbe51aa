"""Car rental: the rental desk of a three-branch car rental company.

Customers with driving licences, branches, the fleet of vehicles, reservations
(referenced like CR-4F7K) with their extras, rentals (the vehicle actually
handed over, with mileage and fuel), and the charges and payments on each
reservation. The tools enforce the company's rental rules and name them when
they refuse a call.
"""

TITLE = "Car rental"

DESCRIPTION = (
    "You are the rental desk agent of Atlantic Car Rental, which has three branches (Lisbon, "
    "Porto and Faro). Customers book a vehicle class (economy, compact, suv or van) at a "
    "pickup branch for a range of dates; each reservation has a reference such as CR-4F7K. "
    "Use the tools to look customers up (by name, email or licence number), check class "
    "availability and prices, book, change and cancel reservations, add extras (child seat, "
    "GPS, ...), hand a vehicle over at pickup (the vehicle is identified by its plate, e.g. "
    "AA-12-BC), take it back with its mileage and fuel level (in eighths of a tank, 0-8), and "
    "record payments. Money is in integer cents (4900 = EUR 49.00); dates are YYYY-MM-DD and "
    "today's date is the scenario clock, which the tools use. The tools refuse anything the "
    "company's rules forbid and say which rule; explain such a refusal to the customer rather "
    "than working around it."
)

RULES = {
    "driver-age": ("The driver must be at least 21 years old on the pickup date, and at least 25 to rent a van."),
    "licence-valid": "The driver's licence must be valid through the reservation's return date.",
    "booking-dates": (
        "A reservation's pickup date cannot be in the past and its return date must be after its "
        "pickup date, at most 30 days later."
    ),
    "class-availability": (
        "A class can be booked at a branch only if, for the requested dates, the branch has more "
        "vehicles of that class (not in maintenance) than overlapping booked or active reservations."
    ),
    "vehicle-ready": (
        "The vehicle handed over must be available (not rented or in maintenance), at the "
        "reservation's pickup branch and of the reserved class."
    ),
    "pickup-on-date": "A vehicle can only be picked up on the reservation's pickup date.",
    "reservation-open": (
        "Only a booked reservation (not yet picked up, completed or cancelled) can be changed, "
        "given extras, picked up or cancelled."
    ),
    "one-way-fee": (
        "Returning to a different branch than the pickup branch adds a one-way fee of EUR 75.00 to the quoted price."
    ),
    "late-return": "A vehicle returned after the return date is charged one extra day at the class rate per day late.",
    "refuel-charge": (
        "A vehicle returned with less fuel than at pickup is charged EUR 15.00 for every missing eighth of a tank."
    ),
    "late-cancellation": (
        "Cancelling a reservation on the day before its pickup date or later costs one day at the class rate."
    ),
}
