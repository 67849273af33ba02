"""The console's processes, one module each: upload (a license file), challenge (a QR
code), code (the phone's 6-digit answer). Each is one transaction under the installation's
row lock, with its audit entry in the same transaction; views call these."""
