def test_settings_import():
    from django.conf import settings

    assert "registration" in settings.INSTALLED_APPS
