"""University course registration: students, courses, sections, enrolments, prerequisites and holds.

An agent acts as the registrar's office assistant of Lakeside University,
looking students and courses up by name or code and enrolling, dropping and
moving students between sections under the registration rules (below), which
the tools enforce and name when they refuse a call.
"""

TITLE = "University course registration"

DESCRIPTION = (
    "You are an assistant in the registrar's office of Lakeside University. Students take "
    "courses (codes like 'CS 201') in sections that meet on fixed days and times in one term "
    "(Spring 2026, Summer 2026, Fall 2026, Spring 2027). Use the tools to look students up (by "
    "name, student number or email), courses up (by code, title or department) and sections "
    "up, then enrol students, drop enrolments, move a student to another section of the same "
    "course, change a section's capacity, record final grades, and place or clear registration "
    "holds. A full section puts the student on its waitlist, and every seat that opens goes to "
    "the first student on the waitlist. Money is in integer cents (45000 = $450.00) and dates "
    "are YYYY-MM-DD; today is the registrar's date, which the tools use for deadlines. The tools "
    "refuse anything the registration rules forbid and say which rule; explain such a refusal "
    "to the student rather than working around it."
)

RULES = {
    "registration-hold": (
        "A student with an active hold (financial, advising or registrar) cannot enrol or join a "
        "waitlist until the hold is cleared; dropping is always allowed."
    ),
    "credit-cap": ("A student's enrolled plus waitlisted credits in one term may not exceed 18."),
    "prerequisites": (
        "Every prerequisite of a course must have been completed with at least the prerequisite's "
        "minimum grade before the student can enrol in or waitlist for the course."
    ),
    "time-conflict": (
        "A student cannot hold two enrolled or waitlisted sections in the same term whose "
        "meeting days overlap and whose meeting times overlap."
    ),
    "duplicate-course": ("A student can be enrolled in or waitlisted for only one section of a course per term."),
    "section-capacity": (
        "A section never has more enrolled students than its capacity: a full section only takes "
        "waitlisted students, and capacity cannot be set below the number already enrolled."
    ),
    "add-drop-deadline": (
        "Enrolling, dropping and changing sections are only possible until the term's add/drop "
        "deadline (inclusive), and never after the term has ended."
    ),
    "financial-hold-paid": ("A financial hold is cleared only when the full amount owed on it is paid at clearance."),
}
