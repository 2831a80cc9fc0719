"""The synthetic company's reference data: people, places, picklists, and the funnel's rates.

Every rate is a probability per opportunity for the event to happen (per lead, per stay in a
stage, per record...), as the comment next to it says. They are tuned so that the measured
cohort conversions land in the middle of the usual B2B ranges (docs: the generator's module
docstring).
"""

from __future__ import annotations

# --- The funnel ----------------------------------------------------------------------------------

RANK = {"inquiry": 0, "mql": 1, "sal": 2, "sql": 3, "sqo": 4, "won": 5, "lost": 5}
TERMINAL = frozenset({"won", "lost", "disqualified"})
SCORING_MODELS = ("scoring-v1", "scoring-v2")
SCORING_CUTOVER_MONTH = 12  # month index (0-based): scoring-v2 from the 13th month
MQL_THRESHOLD = {"scoring-v1": 60, "scoring-v2": 65}

P_MQL = {"scoring-v1": 0.37, "scoring-v2": 0.31}  # per inquiry, times the fit multiplier
P_HOT_MQL = 0.85  # per demo request
FIT_GRADES = "ABCD"
FIT_MULTIPLIER = {"A": 1.5, "B": 1.15, "C": 0.8, "D": 0.4}
P_JUNK = 0.10  # per inquiry that never qualifies: disqualified by marketing
P_NEVER_WORKED = 0.05  # per hand-off: no sales activity at all, aged back to nurture
P_SLOW = 0.08  # per hand-off: first activity deliberately after the 24-hour SLA
P_REASSIGN = 0.5  # per SLA breach: the lead is reassigned to another SDR
P_ACCEPT = {"scoring-v1": 0.66, "scoring-v2": 0.73}  # per worked MQL
P_SQL = 0.52  # per SAL
P_SQO = 0.69  # per SQL
P_WIN = {"smb": 0.25, "mid_market": 0.21, "enterprise": 0.16}  # per new-business opportunity
P_FALLOUT_RECYCLED = 0.6  # per SAL/SQL that does not progress (the rest are disqualified)
P_REENTRY = 0.3  # per recycle: the lead re-enters mql later
MAX_PASSES = 3  # passes through mql per lead

# --- Messy data ----------------------------------------------------------------------------------

P_SKIP = 0.09  # per lead: one (or two) stages are not written if the lead passes them
SKIPS = (("mql",), ("sal",), ("sql",), ("sal", "sql"))
SKIP_WEIGHTS = (35, 25, 25, 15)
P_BACKWARD = 0.025  # per stay in sal or sql: the lead is sent back a stage, then forward again
P_BACKDATED_CLOSE = 0.03  # per closed lead: the close is dated before the first contact
P_STRAY = 0.025  # per terminal lead: a stage change or activity after the terminal stage
P_LATE = 0.003  # per record: delivered several leads later in the stream
LATE_DELAY_LEADS = (20, 2000)
P_LATE_CORRECTION = 0.25  # per correction: delivered late
P_CORRECTION = {  # per record of that type: corrected by revenue operations
    "touch_recorded": 0.006,
    "sales_activity_recorded": 0.004,
    "stage_changed": 0.004,
    "lead_captured": 0.004,
    "opportunity_opened": 0.01,
    "opportunity_amount_changed": 0.08,
}

# --- Time in stage (median days, lognormal sigma) ------------------------------------------------

INQUIRY_TO_MQL = (6.0, 1.1)
DECISION = (1.2, 0.8)  # first activity -> accept or reject
SAL_TO_NEXT = (9.0, 0.7)
SQL_TO_NEXT = (12.0, 0.7)
STEP_BACK = (4.0, 0.6)
NURTURE = (100.0, 0.5)  # recycle -> re-entry
TOUCH_GAP = (9.0, 1.0)
EXTRA_TOUCHES = 2.6  # mean number of touches after the first (exponential, at most 9)
JUNK_REVIEW = (2.0, 1.0)  # inquiry -> disqualified by marketing
STRAY_GAP = (15.0, 0.8)
CORRECTION_GAP = (3.0, 1.0)
SALES_CYCLE = {"smb": (35.0, 0.5), "mid_market": (65.0, 0.5), "enterprise": (110.0, 0.5)}
FIRST_ACTIVITY_HOURS = (1.3, 1.2)
LATE_ACTIVITY_HOURS = (18.0, 0.6)
REOPEN_GAP = (45.0, 0.5)
RECLOSE = (30.0, 0.5)

# --- Opportunities and revenue -------------------------------------------------------------------

DEAL_SIZE = {"smb": (8_000, 0.45), "mid_market": (35_000, 0.5), "enterprise": (150_000, 0.6)}
SALES_STAGES = ("discovery", "evaluation", "proposal", "negotiation")
LOSS_STAGE_WEIGHTS = (30, 30, 25, 15)
P_AMOUNT_CHANGE = {"proposal": (0.35, 0.75, 1.3), "negotiation": (0.3, 0.8, 0.97)}  # p, range
P_REOPEN = 0.05  # per lost opportunity
P_REWIN = 0.4  # per reopened opportunity
LOSS_REASONS = ("no_decision", "competitor", "price", "timing", "no_budget", "product_fit")
REOPEN_REASONS = ("budget approved", "champion returned", "competitor deal fell through")
P_EXPANSION = {"smb": 0.15, "mid_market": 0.3, "enterprise": 0.4}  # per customer-year
P_EXPANSION_WIN = 0.65
EXPANSION_SHARE = (0.15, 0.5)  # of the current ARR
EXPANSION_CYCLE = (40.0, 0.4)
P_CHURN = {"smb": 0.2, "mid_market": 0.12, "enterprise": 0.07}  # per renewal
P_CONTRACTION = 0.1  # per renewal kept
CONTRACTION_SHARE = (0.1, 0.4)
P_UPLIFT = 0.25  # per renewal kept (and not contracted)
UPLIFT_SHARE = (0.03, 0.1)
CHURN_REASONS = ("switched to competitor", "budget cuts", "acquired", "low adoption")
CONTRACTION_REASONS = ("fewer seats", "dropped add-on", "budget cuts")

# --- Sales-side picklists ------------------------------------------------------------------------

REJECT_REASONS = ("no_budget", "bad_contact_data", "not_icp", "duplicate", "timing")
REJECT_WEIGHTS = (20, 15, 25, 10, 30)
RECYCLE_ON_REJECT = frozenset({"no_budget", "timing"})
FALLOUT_RECYCLE_REASONS = ("not_ready", "no_response", "timing")
FALLOUT_DISQUALIFY_REASONS = ("no_budget", "not_icp", "no_authority", "competitor_customer")
JUNK_REASONS = ("spam", "student", "competitor", "invalid_email")
ACTIVITY_TYPES = ("call", "email", "linkedin_message", "meeting")

# --- People --------------------------------------------------------------------------------------

DOMAIN = "example.com"
SDR_TEAMS = {
    "NA": ("sdr-na", ("maya.chen", "lucas.ortiz", "aisha.khan", "ben.walsh")),
    "EMEA": ("sdr-emea", ("sofia.rossi", "jonas.weber")),
    "APAC": ("sdr-apac", ("kenji.sato", "priya.menon")),
}
AE_TEAMS = {
    "smb": ("ae-smb", ("noah.kim", "emma.dubois", "liam.park")),
    "mid_market": ("ae-mid-market", ("olivia.hart", "ethan.brooks", "mia.novak")),
    "enterprise": ("ae-enterprise", ("james.okoro", "ava.lindqvist", "henry.tanaka")),
}
ACCOUNT_MANAGERS = ("grace.miller", "omar.haddad", "chloe.martin")
MARKETING_OPS = ("elena.garcia", "tom.becker")
REVOPS = ("dana.whitfield", "sam.okafor")
FINANCE = "ap.team"
ROUTING = "system:lead-routing"
SCORING = "system:scoring"
LIFECYCLE = "system:hubspot-lifecycle"
SLA_MONITOR = "system:sla-monitor"
BILLING = "system:billing-sync"

FIRST_NAMES = (
    "Ana", "Ben", "Carla", "David", "Elif", "Felix", "Grace", "Hugo", "Ines", "Jack", "Kira",
    "Leo", "Maria", "Nils", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Will", "Xena", "Yusuf", "Zoe", "Amir", "Bianca", "Chen", "Diana", "Erik", "Fatima",
    "Gabriel", "Hana", "Ivan", "Julia", "Kofi", "Lena", "Marco", "Nadia", "Oscar", "Priya",
    "Rafael", "Sara", "Tomas", "Uma", "Victor", "Wei", "Yara", "Zane",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Garcia", "Muller", "Rossi", "Kim", "Nguyen", "Patel", "Silva", "Cohen", "Novak",
    "Jensen", "Dubois", "Tanaka", "Okafor", "Larsen", "Moreau", "Fischer", "Costa", "Ahmed",
    "Brown", "Wilson", "Santos", "Weber", "Horvat", "Ivanova", "Lopez", "Murphy", "Berg",
    "Sato", "Khan", "Walker", "Hughes", "Schmidt", "Romano", "Lindgren", "Petrov", "Yilmaz",
    "Reyes", "Clarke", "Bauer",
)  # fmt: skip
TITLES = (
    ("VP Marketing", 8, False), ("Director of Demand Generation", 10, False),
    ("Marketing Operations Manager", 12, False), ("Head of Revenue Operations", 8, False),
    ("CMO", 4, False), ("CRO", 3, False), ("Sales Operations Manager", 10, False),
    ("Head of Growth", 6, False), ("CFO", 3, False), ("Marketing Manager", 14, False),
    ("Marketing Analyst", 9, True), ("Software Engineer", 5, True), ("Student", 3, True),
    ("Consultant", 5, True),
)  # fmt: skip
TITLE_NAMES = tuple(t[0] for t in TITLES)
TITLE_WEIGHTS = tuple(t[1] for t in TITLES)
JUNIOR_TITLES = frozenset(t[0] for t in TITLES if t[2])

# --- Companies -----------------------------------------------------------------------------------

SEGMENTS = ("smb", "mid_market", "enterprise")
SEGMENT_LEAD_SHARE = (0.50, 0.33, 0.17)
LEADS_PER_ACCOUNT = (1.3, 2.5, 5.0)
EMPLOYEES = ((10, 200), (200, 2_000), (2_000, 60_000))
INDUSTRIES = (
    "software", "fintech", "healthcare", "manufacturing", "retail", "professional_services",
    "education", "media", "logistics", "telecom",
)  # fmt: skip
ICP_INDUSTRIES = frozenset({"software", "fintech", "healthcare", "professional_services"})
FIT_WEIGHTS = {True: (40, 40, 17, 3), False: (7, 30, 41, 22)}
COUNTRIES = (  # code, region, weight, top-level domain
    ("US", "NA", 50, "com"), ("CA", "NA", 6, "ca"), ("BR", "NA", 3, "com.br"),
    ("GB", "EMEA", 10, "co.uk"), ("DE", "EMEA", 7, "de"), ("FR", "EMEA", 4, "fr"),
    ("NL", "EMEA", 3, "nl"), ("SE", "EMEA", 2, "se"), ("ES", "EMEA", 2, "es"),
    ("AU", "APAC", 5, "com.au"), ("IN", "APAC", 4, "in"), ("SG", "APAC", 2, "sg"),
    ("JP", "APAC", 2, "co.jp"),
)  # fmt: skip
COUNTRY_WEIGHTS = tuple(c[2] for c in COUNTRIES)
NAME_STARTS = (
    "North", "Blue", "Bright", "Iron", "Silver", "Clear", "Swift", "Summit", "Harbor", "Pine",
    "Granite", "Atlas", "Nova", "Quantum", "Vertex", "Cedar", "Maple", "Orbit", "Polar", "Red",
    "Lumen", "Kestrel", "Falcon", "Delta", "Sierra", "Coral", "Echo", "Zephyr", "Aurora", "Bolt",
)  # fmt: skip
NAME_ENDS = (
    "wind", "stone", "path", "field", "bridge", "works", "light", "point", "wave", "scale",
    "forge", "gate", "line", "grid", "leaf", "peak", "craft", "flow", "mark", "shift",
)  # fmt: skip
NAME_KINDS = (
    "Analytics", "Systems", "Labs", "Health", "Logistics", "Software", "Group", "Technologies",
    "Capital", "Retail", "Networks", "Media",
)  # fmt: skip
