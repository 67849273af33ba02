"""Two languages: every page in English and Simplified Chinese, chosen by the browser or
by the switch; the catalog is complete and the set-up compiles it without GNU gettext."""

from __future__ import annotations

import gettext
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import translation

from registration import clock, status
from registration.authority.models import IssuedLicense
from registration.authority.support import revoke
from registration.flows.upload import upload_license
from registration.models import ChallengeState, Installation, QrChallenge, RegistrationState
from registration.protocol.causes import AUTH_METHOD_CONTAINER, TITLES, NodeClock, check_license
from registration.request_forms import LicenseRequestForm
from tests.conftest import START, local_facts, make_license
from tests.gate_steps import register
from tests.phone_steps import crafted_token, made_up_token

PO = Path(django_settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
REGISTRATION = reverse("registration:registration")
VERSION = reverse("registration:version")
REQUEST = reverse("registration:license_request")
REPORTS = reverse("reports")
LOGIN = reverse("login")
SET_LANGUAGE = reverse("set_language")
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SWITCH = re.compile(
    r'<form class="language-switch" method="post" action="([^"]+)">(.*?)</form>', re.S
)
CJK = re.compile(r"[\u4e00-\u9fff]")
RESTART_ZH = "您的项目注册因项目重启已失效，请进入注册管理重新认证。"
RESTART_EN = (
    "Your project registration has expired due to project restart. "
    "Enter registration management and authenticate again."
)


@pytest.fixture(scope="module", autouse=True)
def compiled_catalog():
    """Compile the catalog as the set-up does, then make Django load it afresh."""
    call_command("compile_translations", verbosity=0)
    # Entering and leaving an override of LOCALE_PATHS drops Django's loaded catalogs.
    with override_settings(LOCALE_PATHS=list(django_settings.LOCALE_PATHS)):
        pass
    yield


def english(lazy_text: object) -> str:
    with translation.override("en"):
        return str(lazy_text)


def chinese(lazy_text: object) -> str:
    with translation.override("zh-hans"):
        return str(lazy_text)


def get(client: Client, url: str, lang: str):
    return client.get(url, HTTP_ACCEPT_LANGUAGE=lang)


def assert_language(body: str, lang: str, en: list[str], zh: list[str]) -> None:
    """The page says the zh texts (and none of the en ones) in Chinese, and the reverse."""
    shown, hidden = (zh, en) if lang == "zh-hans" else (en, zh)
    for text in shown:
        assert text in body, f"{text!r} missing from the {lang} page"
    for text in hidden:
        assert text not in body, f"{text!r} on the {lang} page"
    expected_lang = "zh-hans" if lang == "zh-hans" else "en"
    assert f'<html lang="{expected_lang}"' in body


LANGS = ["en", "zh-hans"]


# --- Key pages, language from the browser ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_registration_page_failure_panel_with_causes_and_details(
    lang, manager_client, frozen_clock, issue
):
    _, text = issue(app_version="10.0", expires_at=date(2026, 5, 31))
    upload = SimpleUploadedFile("Container.lic", text.encode())

    response = manager_client.post(
        reverse("registration:upload"),
        {"auth_method": AUTH_METHOD_CONTAINER, "license": upload},
        HTTP_ACCEPT_LANGUAGE=lang,
        follow=True,
    )

    assert response.status_code == 422
    assert_language(
        response.content.decode(),
        lang,
        en=[
            "Registration failed",
            "License Expired",
            "Version Mismatch",
            "Expiration date: 2026/05/31",
            "Certified application version : 10.0",
            "Local application version : 11.0",
            "Upload License",
            "System Management",
        ],
        zh=[
            "注册失败",
            "许可证已过期",
            "版本不匹配",
            "到期日期：2026/05/31",
            "认证应用版本：10.0",
            "本地应用版本：11.0",
            "上传许可证",
            "系统管理",
        ],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_registration_page_with_its_qr_code(lang, manager_client, frozen_clock, issue):
    _, text = issue()
    upload_license(text.encode(), AUTH_METHOD_CONTAINER)

    body = get(manager_client, REGISTRATION, lang).content.decode()

    assert_language(
        body,
        lang,
        en=["Scan the QR code with your phone", "Refresh", "Submit", "Verification code"],
        zh=["请用手机扫描二维码", "刷新", "提交", "验证码"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_version_page(lang, manager_client, frozen_clock):
    body = get(manager_client, VERSION, lang).content.decode()
    assert_language(
        body,
        lang,
        en=["Version Information", "Application name", "Request a license", "Log out"],
        zh=["版本信息", "应用名称", "申请许可证", "注册管理", "退出登录"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_license_request_page(lang, manager_client, frozen_clock):
    body = get(manager_client, REQUEST, lang).content.decode()
    assert_language(
        body,
        lang,
        en=["Request a license", "Company name", "Contract signing date", "Write the email"],
        zh=["申请许可证", "公司名称", "合同签订日期", "生成邮件"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_license_request_errors(lang, manager_client, frozen_clock):
    response = manager_client.post(REQUEST, {}, HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 400
    assert_language(
        response.content.decode(),
        lang,
        en=["Enter the company name as in the contract.", "Enter the project name."],
        zh=["请按合同填写公司名称。", "请输入项目名称。"],
    )


def _open_challenge(issue) -> QrChallenge:
    _, text = issue()
    result = upload_license(text.encode(), AUTH_METHOD_CONTAINER)
    assert result.accepted
    return QrChallenge.objects.get(state=ChallengeState.OPEN)


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_phone_page_with_a_code(lang, client, frozen_clock, issue):
    challenge = _open_challenge(issue)

    response = get(client, reverse("phone:verify", kwargs={"token": challenge.token}), lang)

    assert response.status_code == 200
    assert_language(
        response.content.decode(),
        lang,
        en=["Verification code", "Challenge tag", "Time left"],
        zh=["验证码", "二维码标识", "剩余时间"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_phone_page_with_a_problem(lang, client, frozen_clock, issue):
    challenge = _open_challenge(issue)
    frozen_clock.advance(minutes=5)

    response = get(client, reverse("phone:verify", kwargs={"token": challenge.token}), lang)

    assert response.status_code == 410
    assert_language(
        response.content.decode(),
        lang,
        en=["No verification code", "This QR code has expired.", "Click Refresh on the server"],
        zh=["无法获取验证码", "此二维码已过期。", "请在服务器上点击“刷新”"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_phone_page_for_tokens_the_service_refuses(lang, client, frozen_clock, issue):
    lic, _ = issue()
    made_up = get(client, reverse("phone:verify", args=[made_up_token(lic.license_id)]), lang)
    too_long = crafted_token(lic.license_id, ttl_seconds=3600)
    lifetime = get(client, reverse("phone:verify", args=[too_long]), lang)

    assert (made_up.status_code, lifetime.status_code) == (400, 400)
    assert_language(
        made_up.content.decode(),
        lang,
        en=["The QR code has been altered, or its license is not in the vendor"],
        zh=["二维码已被篡改，或其许可证不在厂商的登记记录中。"],
    )
    assert_language(
        lifetime.content.decode(),
        lang,
        en=["lifetime is not one the verification service accepts (at most 300 seconds)."],
        zh=["验证服务不接受此二维码的有效期（最长 300 秒）。"],
    )


@pytest.mark.django_db
def test_new_refusals_of_the_console_in_chinese(frozen_clock, issue):
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    _, installed = issue(issued_at=at)
    assert upload_license(installed.encode(), AUTH_METHOD_CONTAINER).accepted
    _, same_second = issue(issued_at=at)

    with translation.override("zh-hans"):
        refused = upload_license(same_second.encode(), AUTH_METHOD_CONTAINER)
        form = LicenseRequestForm({"company": "Acme\u200bLtd"}, now=START, multi_node=False)
        form.is_valid()

    assert "已安装的是同一秒签发的另一个许可证。" in refused.validation.causes[-1].details
    assert form.errors["company"] == [
        "请删除控制字符（如制表符或换行符）和不可见字符（如零宽空格）。"
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_phone_page_binding_refused(lang, client, frozen_clock, issue):
    challenge = _open_challenge(issue)
    issued = IssuedLicense.objects.get()
    revoke(issued.pk, actor=None, reason="contract ended", now=clock.now())

    response = get(client, reverse("phone:verify", kwargs={"token": challenge.token}), lang)

    assert response.status_code == 403
    assert_language(
        response.content.decode(),
        lang,
        en=["This license has been revoked."],
        zh=["此许可证已被吊销。"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_restart_reminder_modal(
    lang, manager_client, frozen_clock, issue, django_capture_on_commit_callbacks
):
    register(django_capture_on_commit_callbacks, issue)
    Installation.objects.update(state=RegistrationState.EXPIRED_DUE_TO_RESTART)
    status.invalidate()

    body = get(manager_client, VERSION, lang).content.decode()

    assert 'id="restart-reminder"' in body
    assert_language(body, lang, en=[RESTART_EN, ">Authenticate</a>"], zh=[RESTART_ZH, ">认证</a>"])


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_login_page(lang, client):
    body = get(client, LOGIN, lang).content.decode()
    assert_language(
        body, lang, en=["Log in", "Username", "Password"], zh=["登录", "用户名", "密码"]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_not_registered_gate_page(lang, manager_client, frozen_clock):
    response = get(manager_client, REPORTS, lang)

    assert response.status_code == 403
    assert_language(
        response.content.decode(),
        lang,
        en=["This page needs a registered project", "This project is not registered."],
        zh=["此页面需要项目已注册", "此项目尚未注册。"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_error_page(lang, client):
    response = get(client, "/no-such-page/", lang)
    assert response.status_code == 404
    assert_language(
        response.content.decode(), lang, en=["There is no such page."], zh=["该页面不存在。"]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_admin_labels_of_our_models(lang, admin_client, issue):
    issue(company="Acme Ltd")

    body = get(admin_client, reverse("admin:authority_issuedlicense_changelist"), lang)

    assert_language(
        body.content.decode(),
        lang,
        en=["Issued licenses", "License ID", "Project name", "Expiry date"],
        zh=["已签发许可证", "许可证 ID", "项目名称", "到期日期"],
    )


@pytest.mark.django_db
def test_admin_pages_carry_the_switch(admin_client):
    page = get(admin_client, reverse("admin:index"), "en").content.decode()
    action, _token = _switch_form(page)
    assert action == SET_LANGUAGE


def test_the_reminder_and_the_gate_say_the_same_sentence():
    # The modal (template) and the gate's reason (Python) share one msgid.
    with translation.override("zh-hans"):
        assert translation.gettext(RESTART_EN) == RESTART_ZH


# --- The switch ----------------------------------------------------------------------


def _switch_form(body: str) -> tuple[str, str]:
    """Return the switch's action and its CSRF token, failing if the page has no switch."""
    match = SWITCH.search(body)
    assert match, "no language switch on the page"
    action, inner = match.groups()
    assert '<option value="en"' in inner and '<option value="zh-hans"' in inner
    assert 'type="submit"' in inner
    return action, CSRF_INPUT.search(inner).group(1)


@pytest.mark.django_db
def test_switch_on_a_console_page_sets_the_language_for_the_next_pages(csrf_client, frozen_clock):
    page = get(csrf_client, VERSION, "en").content.decode()
    action, token = _switch_form(page)
    assert action == SET_LANGUAGE
    assert '<option value="en" lang="en" selected>' in page

    response = csrf_client.post(
        action,
        {"language": "zh-hans", "next": VERSION, "csrfmiddlewaretoken": token},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 302
    assert response["Location"] == VERSION
    # The choice outweighs the browser's language from now on.
    after = get(csrf_client, VERSION, "en").content.decode()
    assert "版本信息" in after and "Version Information" not in after
    assert '<option value="zh-hans" lang="zh-hans" selected>' in after
    other = get(csrf_client, REPORTS, "en").content.decode()
    assert "此项目尚未注册。" in other

    _action, token = _switch_form(after)
    csrf_client.post(action, {"language": "en", "next": VERSION, "csrfmiddlewaretoken": token})
    assert "Version Information" in get(csrf_client, VERSION, "zh-hans").content.decode()


@pytest.mark.django_db
def test_switch_without_the_csrf_token_is_refused(csrf_client):
    response = csrf_client.post(SET_LANGUAGE, {"language": "zh-hans", "next": VERSION})

    assert response.status_code == 403
    assert "版本信息" not in get(csrf_client, VERSION, "en").content.decode()


@pytest.mark.django_db
def test_switch_on_the_login_page_for_anonymous_users():
    client = Client(enforce_csrf_checks=True)
    action, token = _switch_form(get(client, LOGIN, "en").content.decode())

    client.post(action, {"language": "zh-hans", "next": LOGIN, "csrfmiddlewaretoken": token})

    assert "用户名" in get(client, LOGIN, "en").content.decode()


@pytest.mark.django_db
def test_switch_on_the_phone_page_keeps_the_phone_on_its_code(frozen_clock, issue):
    challenge = _open_challenge(issue)
    url = reverse("phone:verify", kwargs={"token": challenge.token})
    phone = Client(enforce_csrf_checks=True)
    page = get(phone, url, "en").content.decode()
    action, token = _switch_form(page)
    assert f'name="next" value="{url}"' in page
    # The switch is a plain form: the page needs no inline script for it.
    assert "<script>" not in page and "onchange" not in page

    response = phone.post(
        action, {"language": "zh-hans", "next": url, "csrfmiddlewaretoken": token}
    )

    assert response["Location"] == url
    body = get(phone, url, "en").content.decode()
    assert "二维码标识" in body and 'id="verification-code"' in body


@pytest.mark.django_db
def test_an_unknown_language_falls_back_to_english(client):
    body = get(client, LOGIN, "fr-FR,de;q=0.8").content.decode()
    assert "Username" in body and '<html lang="en">' in body


# --- The catalog ---------------------------------------------------------------------


@pytest.mark.parametrize("code", list(TITLES))
def test_every_cause_title_is_translated_in_the_compiled_catalog(code):
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    msgid = english(TITLES[code])

    translated = compiled.gettext(msgid)

    assert translated and translated != msgid, f"cause {code} has no Chinese title"
    assert CJK.search(translated)
    assert chinese(TITLES[code]) == translated


def test_every_cause_detail_line_is_translated():
    lic = make_license(
        app_version="10.0",
        app_name="Other",
        project_content="other",
        expires_at=date(2026, 5, 1),
        max_nodes=1,
        issued_at=START + timedelta(days=1),  # from the future: License content is incorrect
    )
    facts = local_facts(
        live_nodes=2,
        build_date=date(2020, 1, 1),
        node_clocks=[NodeClock("node-b", 9.5)],
        max_clock_skew_seconds=5.0,
    )
    for method in (AUTH_METHOD_CONTAINER, "other"):
        with translation.override("en"):
            en_causes = check_license(lic, method, facts)
        with translation.override("zh-hans"):
            zh_causes = check_license(lic, method, facts)
        assert [c.code for c in en_causes] == [c.code for c in zh_causes]
        for en_cause, zh_cause in zip(en_causes, zh_causes, strict=True):
            assert en_cause.details, en_cause.code
            for en_line, zh_line in zip(en_cause.details, zh_cause.details, strict=True):
                assert en_line != zh_line and CJK.search(zh_line), en_line
    assert {c.code for c in check_license(lic, "other", facts)} >= {"license_type_mismatch"}


def test_every_entry_of_the_po_file_is_translated_and_none_is_fuzzy():
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="zh_Hans")
    entries = [message for message in catalog if message.id]
    assert len(entries) > 200

    for message in entries:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
    assert not catalog.fuzzy
    assert catalog.plural_forms == "nplurals=1; plural=0;"


def test_plurals_in_chinese_have_one_form():
    with translation.override("zh-hans"):
        for n in (1, 2, 5):
            text = translation.ngettext(
                "Incorrect verification code. %(n)s attempt left.",
                "Incorrect verification code. %(n)s attempts left.",
                n,
            ) % {"n": n}
            assert text == f"验证码错误，还可尝试 {n} 次。"


# --- compile_translations ------------------------------------------------------------


@pytest.fixture
def locale_copy(tmp_path, settings) -> Path:
    """A copy of the project's locale directory, used instead of the real one."""
    copy = tmp_path / "locale"
    shutil.copytree(PO.parent.parent.parent, copy, ignore=shutil.ignore_patterns("*.mo"))
    settings.LOCALE_PATHS = [copy]
    return copy / "zh_Hans" / "LC_MESSAGES"


def _load(mo: Path) -> gettext.GNUTranslations:
    with mo.open("rb") as handle:
        return gettext.GNUTranslations(handle)


def test_compile_writes_a_mo_that_django_reads(locale_copy):
    assert not (locale_copy / "django.mo").exists()

    call_command("compile_translations", verbosity=0)

    compiled = _load(locale_copy / "django.mo")
    assert compiled.gettext("Register Now") == "立即注册"
    assert compiled.gettext("Upload License") == "上传许可证"
    with translation.override("zh-hans"):
        assert translation.gettext("Local Container") == "本地容器"


def test_compile_skips_fuzzy_entries(locale_copy):
    po = locale_copy / "django.po"
    text = po.read_text(encoding="utf-8")
    marked = text.replace('msgid "Register Now"\n', '#, fuzzy\nmsgid "Register Now"\n', 1)
    assert marked != text
    po.write_text(marked, encoding="utf-8")

    call_command("compile_translations", verbosity=0)

    compiled = _load(locale_copy / "django.mo")
    assert compiled.gettext("Register Now") == "Register Now"
    assert compiled.gettext("Refresh") == "刷新"


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param('msgid "Broken\nmsgstr "坏"\n', id="unterminated-string"),
        pytest.param('msgstr "no msgid before it"\n', id="msgstr-without-msgid"),
        pytest.param('msgid "Submit"\nmsgstr "递交"\n', id="duplicate-msgid"),
        pytest.param('msgid "Half an entry"\n', id="no-msgstr"),
        pytest.param("msgid = 'not a po line'\n", id="not-a-po-line"),
        pytest.param(
            '#, python-format\nmsgid "Hello %(name)s"\nmsgstr "你好 %(nom)s"\n', id="placeholder"
        ),
    ],
)
def test_compile_refuses_a_malformed_po_and_writes_nothing(locale_copy, breakage):
    po = locale_copy / "django.po"
    po.write_text(po.read_text(encoding="utf-8") + "\n" + breakage, encoding="utf-8")

    with pytest.raises(CommandError, match="django.po"):
        call_command("compile_translations", verbosity=0)

    assert not (locale_copy / "django.mo").exists()


def test_compile_refuses_when_there_is_no_catalog(tmp_path, settings):
    settings.LOCALE_PATHS = [tmp_path]
    with pytest.raises(CommandError, match="No locale"):
        call_command("compile_translations", verbosity=0)


def test_the_compiled_catalog_is_not_committed():
    ignore = (Path(django_settings.BASE_DIR) / ".gitignore").read_text().split()
    assert "*.mo" in ignore


def test_the_set_up_compiles_before_running_or_testing():
    makefile = (Path(django_settings.BASE_DIR) / "Makefile").read_text()
    for target in ("run", "test", "serve"):
        recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        first_command = recipe.splitlines()[1].strip()
        assert first_command == "$(BIN)/python manage.py compile_translations", target


@pytest.mark.django_db
def test_expiry_warning_in_chinese(
    manager_client, frozen_clock, issue, django_capture_on_commit_callbacks
):
    register(
        django_capture_on_commit_callbacks, issue, expires_at=(START + timedelta(days=9)).date()
    )
    body = get(manager_client, REGISTRATION, "zh-hans").content.decode()
    assert "许可证将于 2026/06/10 到期（剩余 9 天）。" in body


@pytest.fixture
def not_admitted():
    """This node lost its seat to node-b: every page answers License Exhausted."""
    from registration.cluster import admission

    saved = (admission.local.admitted, admission.local.seat_holders)
    admission.local.admitted = False
    admission.local.seat_holders = ("node-b",)
    yield
    admission.local.admitted, admission.local.seat_holders = saved


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_not_admitted_page_speaks_the_browsers_language(lang, client, not_admitted):
    # A request in the other language first: the thread's last language must not leak.
    other = "en" if lang == "zh-hans" else "zh-hans"
    get(client, "/no-such-page/", other)

    response = get(client, LOGIN, lang)

    assert response.status_code == 503
    assert_language(
        response.content.decode(),
        lang,
        en=["License Exhausted", "Nodes holding the seats: node-b."],
        zh=["许可节点数已用尽", "占用名额的节点：node-b。"],
    )
