"""Time units (no dependencies: read by the defaults and the CLI before pandas loads)."""

TIME_UNITS = ("days", "weeks", "months", "years")
#: Days per unit, to turn a default landmark grid into the data's unit.
DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12.0, "years": 365.25}
