"""Date formats of every page, the Django admin's included (FORMAT_MODULE_PATH): dates as
the product writes them, 2024/02/01 and 2024/02/01 22:27:45, in both languages (the
console's templates use the same through registration_tags' admin_date, admin_datetime)."""
