"""Root URLconfs, one per set of roles; settings picks one (ROOT_URLCONF)."""
