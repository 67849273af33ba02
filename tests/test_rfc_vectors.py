"""The RFCs' published test vectors, against registration/protocol/otp.py and cryptography.

Every expected value is a literal copied from the RFC text (never recomputed here):
RFC 4226 Appendix D, RFC 6238 Appendix B, RFC 5869 Appendix A.1-A.3, RFC 6287 Appendix C,
RFC 7748 section 6.1 and RFC 8032 section 7.1 TEST 1.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from registration.protocol.otp import (
    dynamic_truncate,
    hkdf_sha256,
    hmac_sha256,
    ocra,
    ocra_message,
)

# --- RFC 4226 (HOTP) -----------------------------------------------------------------------

HOTP_SECRET = b"12345678901234567890"
# Appendix D, tables 1 and 2: (count, HMAC-SHA-1(secret, count), truncated hex, decimal, HOTP).
HOTP_VECTORS = [
    (0, "cc93cf18508d94934c64b65d8ba7667fb7cde4b0", "4c93cf18", 1284755224, "755224"),
    (1, "75a48a19d4cbe100644e8ac1397eea747a2d33ab", "41397eea", 1094287082, "287082"),
    (2, "0bacb7fa082fef30782211938bc1c5e70416ff44", "82fef30", 137359152, "359152"),
    (3, "66c28227d03a2d5529262ff016a1e6ef76557ece", "66ef7655", 1726969429, "969429"),
    (4, "a904c900a64b35909874b33e61c5938a8e15ed1c", "61c5938a", 1640338314, "338314"),
    (5, "a37e783d7b7233c083d4f62926c7a25f238d0316", "33c083d4", 868254676, "254676"),
    (6, "bc9cd28561042c83f219324d3c607256c03272ae", "7256c032", 1918287922, "287922"),
    (7, "a4fb960c0bc06e1eabb804e5b397cdc4b45596fa", "4e5b397", 82162583, "162583"),
    (8, "1b3c89f65e6c9e883012052823443f048b4332db", "2823443f", 673399871, "399871"),
    (9, "1637409809a679dc698207310c8c7fc07290d9e5", "2679dc69", 645520489, "520489"),
]


def test_rfc4226_secret_is_the_appendix_d_hex():
    assert HOTP_SECRET.hex() == "3132333435363738393031323334353637383930"


@pytest.mark.parametrize(("count", "mac", "truncated", "decimal", "hotp"), HOTP_VECTORS)
def test_rfc4226_appendix_d(count, mac, truncated, decimal, hotp):
    digest = hmac.digest(HOTP_SECRET, count.to_bytes(8, "big"), "sha1")

    assert digest.hex() == mac
    assert int(truncated, 16) == decimal
    # Ten digits keep the whole 31-bit number, so this checks the truncation before mod 10^6.
    assert dynamic_truncate(digest, 10) == f"{decimal:010d}"
    assert dynamic_truncate(digest, 6) == hotp


def test_rfc4226_section_5_4_example():
    digest = bytes.fromhex("1f8698690e02ca16618550ef7f19da8e945b555a")

    assert dynamic_truncate(digest, 10) == f"{0x50EF7F19:010d}"
    assert dynamic_truncate(digest, 6) == "872921"


@pytest.mark.parametrize("digits", [0, 11, -1])
def test_truncation_refuses_digit_counts_a_31_bit_number_cannot_fill(digits):
    with pytest.raises(ValueError, match="digits"):
        dynamic_truncate(bytes(20), digits)


def test_truncation_refuses_a_digest_shorter_than_sha1():
    with pytest.raises(ValueError, match="20 bytes"):
        dynamic_truncate(bytes(19), 6)


def test_truncation_masks_the_top_bit_and_pads_with_zeros():
    # Offset 0 (low nibble of the last byte); the top bit of byte 0 must not count.
    assert dynamic_truncate(b"\x80\x00\x00\x01" + bytes(16), 6) == "000001"


# --- RFC 6238 (TOTP) -----------------------------------------------------------------------

# The seeds of Appendix A's reference code (seed, seed32, seed64), per hash.
TOTP_SEEDS = {
    "SHA1": bytes.fromhex("3132333435363738393031323334353637383930"),
    "SHA256": bytes.fromhex("3132333435363738393031323334353637383930313233343536373839303132"),
    "SHA512": bytes.fromhex(
        "3132333435363738393031323334353637383930"
        "3132333435363738393031323334353637383930"
        "3132333435363738393031323334353637383930"
        "31323334"
    ),
}
# Appendix B, table 1: (time in seconds, T in hex, mode, TOTP); X = 30, T0 = 0, 8 digits.
TOTP_VECTORS = [
    (59, "0000000000000001", "SHA1", "94287082"),
    (59, "0000000000000001", "SHA256", "46119246"),
    (59, "0000000000000001", "SHA512", "90693936"),
    (1111111109, "00000000023523EC", "SHA1", "07081804"),
    (1111111109, "00000000023523EC", "SHA256", "68084774"),
    (1111111109, "00000000023523EC", "SHA512", "25091201"),
    (1111111111, "00000000023523ED", "SHA1", "14050471"),
    (1111111111, "00000000023523ED", "SHA256", "67062674"),
    (1111111111, "00000000023523ED", "SHA512", "99943326"),
    (1234567890, "000000000273EF07", "SHA1", "89005924"),
    (1234567890, "000000000273EF07", "SHA256", "91819424"),
    (1234567890, "000000000273EF07", "SHA512", "93441116"),
    (2000000000, "0000000003F940AA", "SHA1", "69279037"),
    (2000000000, "0000000003F940AA", "SHA256", "90698825"),
    (2000000000, "0000000003F940AA", "SHA512", "38618901"),
    (20000000000, "0000000027BC86AA", "SHA1", "65353130"),
    (20000000000, "0000000027BC86AA", "SHA256", "77737706"),
    (20000000000, "0000000027BC86AA", "SHA512", "47863826"),
]


def test_rfc6238_sha256_seed_is_32_ascii_digits():
    assert TOTP_SEEDS["SHA256"] == b"12345678901234567890123456789012"


@pytest.mark.parametrize(("seconds", "steps", "mode", "totp"), TOTP_VECTORS)
def test_rfc6238_appendix_b(seconds, steps, mode, totp):
    counter = (seconds // 30).to_bytes(8, "big")
    digest = hmac.digest(TOTP_SEEDS[mode], counter, mode.lower())

    assert counter.hex().upper() == steps
    assert dynamic_truncate(digest, 8) == totp


# --- RFC 5869 (HKDF) -----------------------------------------------------------------------

# Appendix A.1-A.3 (the SHA-256 cases): (IKM, salt, info, L, PRK, OKM).
HKDF_VECTORS = {
    "A.1": (
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    "A.2": (
        "000102030405060708090a0b0c0d0e0f"
        "101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f"
        "303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f",
        "606162636465666768696a6b6c6d6e6f"
        "707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f"
        "909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
        "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
        "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        82,
        "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
        "b11e398dc80327a1c8e7f78c596a4934"
        "4f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09"
        "da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f"
        "1d87",
    ),
    "A.3": (
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "",
        "",
        42,
        "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
}


@pytest.mark.parametrize("case", sorted(HKDF_VECTORS))
def test_rfc5869_appendix_a(case):
    ikm, salt, info, length, prk, okm = (
        bytes.fromhex(v) if isinstance(v, str) else v for v in HKDF_VECTORS[case]
    )

    # PRK = HMAC-Hash(salt, IKM), an empty salt standing for HashLen zeros (section 2.2).
    assert hmac.digest(salt or bytes(32), ikm, "sha256") == prk
    assert HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk) == okm
    assert hkdf_sha256(ikm, salt, info, length) == okm
    assert len(okm) == length


def test_hkdf_agrees_with_cryptography_on_random_inputs():
    rng = random.Random(5869)
    lengths = [1, 31, 32, 33, 64, 65, 255 * 32] + [rng.randint(1, 255 * 32) for _ in range(25)]
    for length in lengths:
        ikm = rng.randbytes(rng.randint(0, 100))
        salt = rng.randbytes(rng.choice([0, 1, 32, 64, 65, 200]))
        info = rng.randbytes(rng.randint(0, 300))
        expected = HKDF(
            algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info
        ).derive(ikm)
        assert hkdf_sha256(ikm, salt, info, length) == expected, (length, len(salt), len(info))


# --- RFC 4231 (HMAC-SHA256), the test cases with full-length output --------------------

RFC4231 = [
    (
        "0b" * 20,
        b"Hi There".hex(),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe".hex(),
        b"what do ya want for nothing?".hex(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        "aa" * 20,
        "dd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        "0102030405060708090a0b0c0d0e0f10111213141516171819",
        "cd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        "aa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First".hex(),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
]


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_rfc4231_hmac_sha256(key, data, expected):
    assert hmac_sha256(bytes.fromhex(key), bytes.fromhex(data)).hex() == expected


def test_hmac_sha256_agrees_with_the_standard_library_at_every_key_length():
    rng = random.Random(4231)
    for key_length in [0, 1, 31, 32, 63, 64, 65, 128, 200]:
        key, message = rng.randbytes(key_length), rng.randbytes(rng.randint(0, 300))
        assert hmac_sha256(key, message) == hmac.digest(key, message, "sha256")


def test_hkdf_empty_salt_is_32_zero_bytes():
    assert hkdf_sha256(b"ikm", b"", b"info", 32) == hkdf_sha256(b"ikm", bytes(32), b"info", 32)


@pytest.mark.parametrize("length", [0, -1, 255 * 32 + 1])
def test_hkdf_refuses_lengths_outside_1_to_255_blocks(length):
    with pytest.raises(ValueError, match="length"):
        hkdf_sha256(b"ikm", b"salt", b"info", length)


# --- RFC 6287 (OCRA) -----------------------------------------------------------------------

# Appendix C's keys and PIN hash.
KEY20 = bytes.fromhex("3132333435363738393031323334353637383930")
KEY32 = bytes.fromhex("3132333435363738393031323334353637383930313233343536373839303132")
KEY64 = bytes.fromhex(
    "313233343536373839303132333435363738393031323334353637383930313233343"
    "53637383930313233343536373839303132333435363738393031323334"
)
PIN = bytes.fromhex("7110eda4d09e062aa5e4a390b0a572ac0d2c0220")
# Appendix B's time, "Mar 25 2008, 12:06:30 GMT"; the T column of Appendix C is its minutes.
APPENDIX_B_TIME = int(datetime(2008, 3, 25, 12, 6, 30, tzinfo=UTC).timestamp())
T_MINUTES = 0x132D0B6
# Appendix C: (suite, key, counter, question, PIN hash, OCRA value); a T1M suite's time is
# APPENDIX_B_TIME.
OCRA_VECTORS = [
    # C.1.  One-Way Challenge Response
    # OCRA-1:HOTP-SHA1-6:QN08
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "00000000", None, "237653"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "11111111", None, "243178"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "22222222", None, "653583"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "33333333", None, "740991"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "44444444", None, "608993"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "55555555", None, "388898"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "66666666", None, "816933"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "77777777", None, "224598"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "88888888", None, "750600"),
    ("OCRA-1:HOTP-SHA1-6:QN08", KEY20, None, "99999999", None, "294470"),
    # OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 0, "12345678", PIN, "65347737"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 1, "12345678", PIN, "86775851"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 2, "12345678", PIN, "78192410"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 3, "12345678", PIN, "71565254"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 4, "12345678", PIN, "10104329"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 5, "12345678", PIN, "65983500"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 6, "12345678", PIN, "70069104"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 7, "12345678", PIN, "91771096"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 8, "12345678", PIN, "75011558"),
    ("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, 9, "12345678", PIN, "08522129"),
    # OCRA-1:HOTP-SHA256-8:QN08-PSHA1
    ("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", KEY32, None, "00000000", PIN, "83238735"),
    ("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", KEY32, None, "11111111", PIN, "01501458"),
    ("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", KEY32, None, "22222222", PIN, "17957585"),
    ("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", KEY32, None, "33333333", PIN, "86776967"),
    ("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", KEY32, None, "44444444", PIN, "86807031"),
    # OCRA-1:HOTP-SHA512-8:C-QN08
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 0, "00000000", None, "07016083"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 1, "11111111", None, "63947962"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 2, "22222222", None, "70123924"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 3, "33333333", None, "25341727"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 4, "44444444", None, "33203315"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 5, "55555555", None, "34205738"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 6, "66666666", None, "44343969"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 7, "77777777", None, "51946085"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 8, "88888888", None, "20403879"),
    ("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, 9, "99999999", None, "31409299"),
    # OCRA-1:HOTP-SHA512-8:QN08-T1M, T = 132d0b6
    ("OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY64, None, "00000000", None, "95209754"),
    ("OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY64, None, "11111111", None, "55907591"),
    ("OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY64, None, "22222222", None, "22048402"),
    ("OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY64, None, "33333333", None, "24218844"),
    ("OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY64, None, "44444444", None, "36209546"),
    # C.2.  Mutual Challenge-Response
    # Server -- OCRA-1:HOTP-SHA256-8:QA08
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "CLI22220SRV11110", None, "28247970"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "CLI22221SRV11111", None, "01984843"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "CLI22222SRV11112", None, "65387857"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "CLI22223SRV11113", None, "03351211"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "CLI22224SRV11114", None, "83412541"),
    # Client -- OCRA-1:HOTP-SHA256-8:QA08
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SRV11110CLI22220", None, "15510767"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SRV11111CLI22221", None, "90175646"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SRV11112CLI22222", None, "33777207"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SRV11113CLI22223", None, "95285278"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SRV11114CLI22224", None, "28934924"),
    # Server -- OCRA-1:HOTP-SHA512-8:QA08
    ("OCRA-1:HOTP-SHA512-8:QA08", KEY64, None, "CLI22220SRV11110", None, "79496648"),
    ("OCRA-1:HOTP-SHA512-8:QA08", KEY64, None, "CLI22221SRV11111", None, "76831980"),
    ("OCRA-1:HOTP-SHA512-8:QA08", KEY64, None, "CLI22222SRV11112", None, "12250499"),
    ("OCRA-1:HOTP-SHA512-8:QA08", KEY64, None, "CLI22223SRV11113", None, "90856481"),
    ("OCRA-1:HOTP-SHA512-8:QA08", KEY64, None, "CLI22224SRV11114", None, "12761449"),
    # Client -- OCRA-1:HOTP-SHA512-8:QA08-PSHA1
    ("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", KEY64, None, "SRV11110CLI22220", PIN, "18806276"),
    ("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", KEY64, None, "SRV11111CLI22221", PIN, "70020315"),
    ("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", KEY64, None, "SRV11112CLI22222", PIN, "01600026"),
    ("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", KEY64, None, "SRV11113CLI22223", PIN, "18951020"),
    ("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", KEY64, None, "SRV11114CLI22224", PIN, "32528969"),
    # C.3.  Plain Signature
    # OCRA-1:HOTP-SHA256-8:QA08
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SIG10000", None, "53095496"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SIG11000", None, "04110475"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SIG12000", None, "31331128"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SIG13000", None, "76028668"),
    ("OCRA-1:HOTP-SHA256-8:QA08", KEY32, None, "SIG14000", None, "46554205"),
    # OCRA-1:HOTP-SHA512-8:QA10-T1M, T = 132d0b6
    ("OCRA-1:HOTP-SHA512-8:QA10-T1M", KEY64, None, "SIG1000000", None, "77537423"),
    ("OCRA-1:HOTP-SHA512-8:QA10-T1M", KEY64, None, "SIG1100000", None, "31970405"),
    ("OCRA-1:HOTP-SHA512-8:QA10-T1M", KEY64, None, "SIG1200000", None, "10235557"),
    ("OCRA-1:HOTP-SHA512-8:QA10-T1M", KEY64, None, "SIG1300000", None, "95213541"),
    ("OCRA-1:HOTP-SHA512-8:QA10-T1M", KEY64, None, "SIG1400000", None, "65360607"),
]


def test_rfc6287_keys_and_pin_are_the_ascii_digits_and_sha1_of_1234():
    assert KEY20 == b"12345678901234567890"
    assert KEY32 == b"12345678901234567890123456789012"
    assert KEY64 == b"1234567890" * 6 + b"1234"
    assert hashlib.sha1(b"1234").digest() == PIN


def test_rfc6287_appendix_b_time_is_appendix_c_t():
    assert APPENDIX_B_TIME // 60 == T_MINUTES


@pytest.mark.parametrize(("suite", "key", "counter", "question", "pin", "expected"), OCRA_VECTORS)
def test_rfc6287_appendix_c(suite, key, counter, question, pin, expected):
    timestamp = APPENDIX_B_TIME if "-T1M" in suite else None

    got = ocra(suite, key, question, counter=counter, password_hash=pin, timestamp=timestamp)

    assert got == expected


def test_rfc6287_appendix_c_has_every_vector():
    assert len(OCRA_VECTORS) == 70
    assert {row[0] for row in OCRA_VECTORS} == {
        "OCRA-1:HOTP-SHA1-6:QN08",
        "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1",
        "OCRA-1:HOTP-SHA256-8:QN08-PSHA1",
        "OCRA-1:HOTP-SHA512-8:C-QN08",
        "OCRA-1:HOTP-SHA512-8:QN08-T1M",
        "OCRA-1:HOTP-SHA256-8:QA08",
        "OCRA-1:HOTP-SHA512-8:QA08",
        "OCRA-1:HOTP-SHA512-8:QA08-PSHA1",
        "OCRA-1:HOTP-SHA512-8:QA10-T1M",
    }


def test_any_second_of_the_minute_gives_the_same_t():
    suite, question = "OCRA-1:HOTP-SHA512-8:QA10-T1M", "SIG1000000"
    for seconds in (T_MINUTES * 60, APPENDIX_B_TIME, T_MINUTES * 60 + 59):
        assert ocra(suite, KEY64, question, timestamp=seconds) == "77537423"
    assert ocra(suite, KEY64, question, timestamp=T_MINUTES * 60 + 60) != "77537423"


PRODUCT_SUITE = "OCRA-1:HOTP-SHA256-6:QH64"


def test_product_suite_message_is_suite_zero_and_the_question_bytes_padded_to_128():
    question = hashlib.sha256(b"a canonical challenge").hexdigest()

    message = ocra_message(PRODUCT_SUITE, question)

    assert message == b"OCRA-1:HOTP-SHA256-6:QH64" + b"\x00" + bytes.fromhex(question) + bytes(96)
    assert len(message) == 25 + 1 + 128


def test_product_suite_response_is_truncated_hmac_sha256_of_that_message():
    key, question = bytes(range(32)), "00" * 31 + "ff"
    message = PRODUCT_SUITE.encode() + b"\x00" + bytes.fromhex(question).ljust(128, b"\x00")

    code = ocra(PRODUCT_SUITE, key, question)

    assert code == dynamic_truncate(hmac.digest(key, message, "sha256"), 6)
    assert len(code) == 6 and code.isdigit()
    assert ocra(PRODUCT_SUITE, key, question.upper()) == code


def test_numeric_question_is_hex_digits_padded_on_the_right_like_the_reference_code():
    # 12345678 = 0xBC614E; 1000 = 0x3E8, an odd digit count, so the reference shifts by a nibble.
    suite = "OCRA-1:HOTP-SHA1-6:QN08"
    prefix = suite.encode() + b"\x00"

    assert ocra_message(suite, "12345678") == prefix + bytes.fromhex("bc614e") + bytes(125)
    assert ocra_message(suite, "1000") == prefix + bytes.fromhex("3e80") + bytes(126)
    assert ocra_message(suite, "0") == prefix + bytes(128)


def test_message_carries_c_q_p_s_t_in_the_rfc_order():
    suite = "OCRA-1:HOTP-SHA512-8:C-QA08-PSHA1-S064-T1M"

    message = ocra_message(
        suite, "SIG1", counter=7, password_hash=PIN, session=b"sess", timestamp=APPENDIX_B_TIME
    )

    assert message == (
        suite.encode()
        + b"\x00"
        + bytes.fromhex("0000000000000007")
        + b"SIG1".ljust(128, b"\x00")
        + PIN
        + b"sess".rjust(64, b"\x00")
        + bytes.fromhex("000000000132d0b6")
    )


@pytest.mark.parametrize(
    "suite",
    [
        "",
        "OCRA-1:HOTP-SHA1-6:QN08 ",
        "OCRA-1:HOTP-SHA1-6:QN08\n",
        "ocra-1:hotp-sha1-6:qn08",
        "OCRA-2:HOTP-SHA1-6:QN08",
        "OCRA-1:HOTP-MD5-6:QN08",
        "OCRA-1:TOTP-SHA1-6:QN08",
        "OCRA-1:HOTP-SHA1-0:QN08",
        "OCRA-1:HOTP-SHA1-3:QN08",
        "OCRA-1:HOTP-SHA1-06:QN08",
        "OCRA-1:HOTP-SHA1-11:QN08",
        "OCRA-1:HOTP-SHA1-6",
        "OCRA-1:HOTP-SHA1-6:",
        "OCRA-1:HOTP-SHA1-6:C",
        "OCRA-1:HOTP-SHA1-6:-QN08",
        "OCRA-1:HOTP-SHA1-6:C-C-QN08",
        "OCRA-1:HOTP-SHA1-6:QX08",
        "OCRA-1:HOTP-SHA1-6:QN8",
        "OCRA-1:HOTP-SHA1-6:QN03",
        "OCRA-1:HOTP-SHA1-6:QN65",
        "OCRA-1:HOTP-SHA1-6:QN\u0660\u0668",
        "OCRA-1:HOTP-SHA1-6:QN08-PMD5",
        "OCRA-1:HOTP-SHA1-6:QN08-PSHA1-PSHA1",
        "OCRA-1:HOTP-SHA1-6:QN08-T1M-PSHA1",
        "OCRA-1:HOTP-SHA1-6:QN08-S064-PSHA1",
        "OCRA-1:HOTP-SHA1-6:QN08-S64",
        "OCRA-1:HOTP-SHA1-6:QN08-S000",
        "OCRA-1:HOTP-SHA1-6:QN08-S513",
        "OCRA-1:HOTP-SHA1-6:QN08-T0H",
        "OCRA-1:HOTP-SHA1-6:QN08-T01M",
        "OCRA-1:HOTP-SHA1-6:QN08-T60S",
        "OCRA-1:HOTP-SHA1-6:QN08-T60M",
        "OCRA-1:HOTP-SHA1-6:QN08-T49H",
        "OCRA-1:HOTP-SHA1-6:QN08-T1D",
        "OCRA-1:HOTP-SHA1-6:QN08-",
    ],
)
def test_malformed_or_unsupported_suites_are_refused(suite):
    with pytest.raises(ValueError):
        ocra(suite, KEY20, "12345678")


@pytest.mark.parametrize(
    ("suite", "inputs"),
    [
        ("OCRA-1:HOTP-SHA1-6:C-QN08", {}),
        ("OCRA-1:HOTP-SHA1-6:QN08", {"counter": 0}),
        ("OCRA-1:HOTP-SHA1-6:C-QN08", {"counter": -1}),
        ("OCRA-1:HOTP-SHA1-6:C-QN08", {"counter": 1 << 64}),
        ("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", {}),
        ("OCRA-1:HOTP-SHA1-6:QN08", {"password_hash": PIN}),
        ("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", {"password_hash": PIN[:-1]}),
        ("OCRA-1:HOTP-SHA1-6:QN08-PSHA256", {"password_hash": PIN}),
        ("OCRA-1:HOTP-SHA1-6:QN08-S064", {}),
        ("OCRA-1:HOTP-SHA1-6:QN08", {"session": b"s"}),
        ("OCRA-1:HOTP-SHA1-6:QN08-S064", {"session": bytes(65)}),
        ("OCRA-1:HOTP-SHA1-6:QN08-T1M", {}),
        ("OCRA-1:HOTP-SHA1-6:QN08", {"timestamp": APPENDIX_B_TIME}),
        ("OCRA-1:HOTP-SHA1-6:QN08-T1M", {"timestamp": -1}),
    ],
)
def test_missing_extra_or_malformed_inputs_are_refused(suite, inputs):
    with pytest.raises(ValueError):
        ocra(suite, KEY20, "12345678", **inputs)


@pytest.mark.parametrize(
    ("suite", "question"),
    [
        ("OCRA-1:HOTP-SHA1-6:QN08", ""),
        ("OCRA-1:HOTP-SHA1-6:QN08", "12a4"),
        ("OCRA-1:HOTP-SHA1-6:QN08", "-1"),
        ("OCRA-1:HOTP-SHA1-6:QN08", "\u0661\u0662"),
        ("OCRA-1:HOTP-SHA1-6:QN64", "9" * 309),
        ("OCRA-1:HOTP-SHA1-6:QA08", ""),
        ("OCRA-1:HOTP-SHA1-6:QA08", "SIG 1000"),
        ("OCRA-1:HOTP-SHA1-6:QA08", "SIG\u00e91000"),
        ("OCRA-1:HOTP-SHA1-6:QA64", "A" * 129),
        ("OCRA-1:HOTP-SHA256-6:QH64", ""),
        ("OCRA-1:HOTP-SHA256-6:QH64", "0x12"),
        ("OCRA-1:HOTP-SHA256-6:QH64", "g" * 64),
        ("OCRA-1:HOTP-SHA256-6:QH64", "0" * 257),
    ],
)
def test_questions_outside_their_format_or_the_128_byte_field_are_refused(suite, question):
    with pytest.raises(ValueError):
        ocra(suite, KEY32, question)


def test_questions_filling_the_128_byte_field_are_accepted():
    assert len(ocra("OCRA-1:HOTP-SHA1-6:QA64", KEY20, "A" * 128)) == 6
    assert len(ocra("OCRA-1:HOTP-SHA1-6:QH64", KEY20, "f" * 256)) == 6
    assert len(ocra("OCRA-1:HOTP-SHA1-6:QN64", KEY20, str((1 << 1024) - 1))) == 6


# --- RFC 7748 (X25519) and RFC 8032 (Ed25519), through cryptography ------------------------

# Section 6.1.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED_K = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_rfc7748_section_6_1():
    alice = X25519PrivateKey.from_private_bytes(ALICE_PRIVATE)
    bob = X25519PrivateKey.from_private_bytes(BOB_PRIVATE)

    assert alice.public_key().public_bytes_raw() == ALICE_PUBLIC
    assert bob.public_key().public_bytes_raw() == BOB_PUBLIC
    assert alice.exchange(X25519PublicKey.from_public_bytes(BOB_PUBLIC)) == SHARED_K
    assert bob.exchange(X25519PublicKey.from_public_bytes(ALICE_PUBLIC)) == SHARED_K


# Section 7.1, TEST 1 (the empty message).
ED25519_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ED25519_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
ED25519_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a"
    "84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46b"
    "d25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8032_section_7_1_test_1():
    key = Ed25519PrivateKey.from_private_bytes(ED25519_SECRET)

    assert key.public_key().public_bytes_raw() == ED25519_PUBLIC
    assert key.sign(b"") == ED25519_SIGNATURE
    key.public_key().verify(ED25519_SIGNATURE, b"")
