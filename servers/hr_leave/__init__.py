"""HR leave management: employees, leave types, yearly balances, requests, holidays, blackouts.

Northwind Analytics' HR leave desk. Employees belong to a department and report
to a manager; each has a yearly entitlement per leave type. Requests are counted
in working days (weekends and public holidays excluded), and the tools enforce
the company's leave policy (below), naming the rule when they refuse a call.
"""

TITLE = "HR leave management"

DESCRIPTION = (
    "You are the HR leave assistant of Northwind Analytics, which has four departments "
    "(Engineering, Sales, Finance and People). Employees request annual, sick, parental and "
    "compassionate leave; each has a yearly entitlement per leave type (a balance with entitled "
    "and used days). Use the tools to look employees up by name or email, check balances, public "
    "holidays and team blackout periods, submit leave requests, have the employee's manager approve "
    "or reject them, cancel requests, set entitlements, add public holidays and blackout periods, "
    "and change who an employee reports to. Leave is counted in working days: weekends and public "
    "holidays do not count. Dates are YYYY-MM-DD; today is the company's date, which the tools use "
    "for notice periods. The tools refuse anything the leave policy forbids and say which rule; "
    "explain such a refusal rather than working around it."
)

RULES = {
    "sufficient-balance": (
        "A request cannot take more working days than the employee's remaining balance of that leave "
        "type for that year (entitled minus used minus pending days), and an entitlement cannot be set "
        "below the days already used or pending."
    ),
    "advance-notice": (
        "Annual leave must be requested at least 7 days before it starts and parental leave at least "
        "28 days before; sick and compassionate leave need no notice."
    ),
    "no-overlap": "An employee cannot have two pending or approved requests whose dates overlap.",
    "blackout-period": (
        "Annual leave cannot be requested or approved for dates that overlap a blackout period of the "
        "employee's department."
    ),
    "manager-approval": "Only the employee's own manager can approve or reject a leave request.",
    "cancel-before-start": (
        "An approved request can only be cancelled before its first day; cancelling it gives its "
        "working days back to the balance."
    ),
    "working-days": (
        "A request is counted in working days, excluding weekends and public holidays, and must cover at "
        "least one working day."
    ),
    "parental-eligibility": (
        "Parental leave requires at least 182 days (26 weeks) of service on the day it is requested."
    ),
}
