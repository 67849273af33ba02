# One date format across pages (licserver/formats/__init__.py); everything else as
# Django's own locale gives it.
DATE_FORMAT = "Y/m/d"
DATETIME_FORMAT = "Y/m/d H:i:s"
SHORT_DATE_FORMAT = "Y/m/d"
SHORT_DATETIME_FORMAT = "Y/m/d H:i"
TIME_FORMAT = "H:i:s"
