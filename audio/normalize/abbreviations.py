"""Abbreviations of local government, documents and services, as a listener knows them.

Three tables: words written short in every notice (UBND, HTX, BHYT...), the kinds of
official document (NĐ, QĐ, TT...) and the bodies that issue them (CP, UBND, BTTTT...).
The last two are read only inside a document code (``NĐ-CP``, ``45/2024/QĐ-UBND``)
because alone "TT" or "CP" mean other things. A document number is read the way a
commune official reads it aloud: "số bốn mươi lăm năm hai nghìn không trăm hai mươi
tư quyết định Ủy ban nhân dân". Every match is a whole word and case-sensitive: "CA"
is the police, "Ca" and "ca" are other words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from audio.normalize.numbers import read_number, word_before

# Not preceded / followed by a letter (digits allowed: "UBND2" stays readable).
NO_LETTER_BEFORE = r"(?<![^\W\d_])"
NO_LETTER_AFTER = r"(?![^\W\d_])"

ABBREVIATIONS = {
    # government and mass organisations
    "UBND": "Ủy ban nhân dân",
    "HĐND": "Hội đồng nhân dân",
    "UBMTTQ": "Ủy ban Mặt trận Tổ quốc",
    "MTTQ": "Mặt trận Tổ quốc",
    "HLHPN": "Hội Liên hiệp Phụ nữ",
    "HPN": "Hội Phụ nữ",
    "HND": "Hội Nông dân",
    "ĐTN": "Đoàn Thanh niên",
    "CCB": "Cựu chiến binh",
    "ĐBQH": "đại biểu Quốc hội",
    "BCH": "Ban Chấp hành",
    "BCĐ": "Ban Chỉ đạo",
    "BQL": "Ban Quản lý",
    "BCHQS": "Ban Chỉ huy quân sự",
    "TDP": "tổ dân phố",
    "KDC": "khu dân cư",
    "KVBP": "khu vực bỏ phiếu",
    "TP.HCM": "Thành phố Hồ Chí Minh",
    "TPHCM": "Thành phố Hồ Chí Minh",
    "TP": "thành phố",
    # services and programmes
    "HTX": "hợp tác xã",
    "TYT": "trạm y tế",
    "TTYT": "trung tâm y tế",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "MN": "mầm non",
    "NTM": "nông thôn mới",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "BHTN": "bảo hiểm thất nghiệp",
    "CCCD": "căn cước công dân",
    "CMND": "chứng minh nhân dân",
    "GCN": "giấy chứng nhận",
    "QSDĐ": "quyền sử dụng đất",
    "SDĐPNN": "sử dụng đất phi nông nghiệp",
    "MST": "mã số thuế",
    "GTGT": "giá trị gia tăng",
    "TNCN": "thu nhập cá nhân",
    "SXKD": "sản xuất kinh doanh",
    "HKD": "hộ kinh doanh",
    "CA": "công an",
    "CSGT": "cảnh sát giao thông",
    "PCCC": "phòng cháy chữa cháy",
    "PCTT-TKCN": "phòng chống thiên tai và tìm kiếm cứu nạn",
    "PCTT&TKCN": "phòng chống thiên tai và tìm kiếm cứu nạn",
    "PCTT": "phòng chống thiên tai",
    "TKCN": "tìm kiếm cứu nạn",
    "ATNĐ": "áp thấp nhiệt đới",
    "KTTV": "khí tượng thủy văn",
    "BĐ": "báo động",
    "ATTP": "an toàn thực phẩm",
    "VSATTP": "vệ sinh an toàn thực phẩm",
    "VSMT": "vệ sinh môi trường",
    "ATGT": "an toàn giao thông",
    "GPMB": "giải phóng mặt bằng",
    "CNTT": "công nghệ thông tin",
    "KT-XH": "kinh tế - xã hội",
    "NN&PTNT": "Nông nghiệp và Phát triển nông thôn",
    "BVTV": "bảo vệ thực vật",
    "TBA": "trạm biến áp",
    "CLB": "câu lạc bộ",
    "TDTT": "thể dục thể thao",
    "KHHGĐ": "kế hoạch hóa gia đình",
    "GĐVH": "gia đình văn hóa",
    "TCMR": "tiêm chủng mở rộng",
    "TCM": "tay chân miệng",
    "SXH": "sốt xuất huyết",
    "VNNB": "viêm não Nhật Bản",
    "DTLCP": "dịch tả lợn châu Phi",
    "LMLM": "lở mồm long móng",
    "COVID-19": "cô-vít mười chín",
    "COVID": "cô-vít",
    "QL": "quốc lộ",
    "SĐT": "số điện thoại",
    "ĐT": "điện thoại",  # alone; "ĐT 391" with a number is a road (markers.py)
    "UBBC": "Ủy ban bầu cử",
    "CN": "chủ nhật",
    "v.v.": "vân vân",  # in schedules "T7, CN" (markers.py reads T2..T7)
}

# Kinds of document, first part of a document code.
DOCUMENT_TYPES = {
    "NĐ": "nghị định",
    "QĐ": "quyết định",
    "TT": "thông tư",
    "NQ": "nghị quyết",
    "CT": "chỉ thị",
    "KH": "kế hoạch",
    "TB": "thông báo",
    "CV": "công văn",
    "BC": "báo cáo",
    "HD": "hướng dẫn",
    "TTr": "tờ trình",
    "TTLT": "thông tư liên tịch",
}
# Bodies that issue documents, and their offices (after the kind: QĐ-UBND, UBND-VP).
ISSUERS = {
    "CP": "Chính phủ",
    "TTg": "Thủ tướng",
    "UBND": "Ủy ban nhân dân",
    "HĐND": "Hội đồng nhân dân",
    "BTTTT": "Bộ Thông tin và Truyền thông",
    "BYT": "Bộ Y tế",
    "BTC": "Bộ Tài chính",
    "BNNPTNT": "Bộ Nông nghiệp và Phát triển nông thôn",
    "BTNMT": "Bộ Tài nguyên và Môi trường",
    "BGDĐT": "Bộ Giáo dục và Đào tạo",
    "BCA": "Bộ Công an",
    "BLĐTBXH": "Bộ Lao động - Thương binh và Xã hội",
    "MTTQ": "Mặt trận Tổ quốc",
    "ĐU": "Đảng ủy",
    "VP": "văn phòng",
    "BCĐ": "Ban Chỉ đạo",
    "BCH": "Ban Chỉ huy",
    "UBBC": "Ủy ban bầu cử",
}


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_PART = _alternatives({*DOCUMENT_TYPES, *ISSUERS})
# A document code: two parts at least (NĐ-CP, QĐ-UBND, UBND-VP), or a law's "QH15".
_CODE = rf"(?:(?:{_PART})(?:-(?:{_PART}))+|QH\d{{1,2}})"
DOCUMENT_CODE = re.compile(NO_LETTER_BEFORE + "(" + _CODE + ")" + NO_LETTER_AFTER)
# 45/2024/QĐ-UBND, 12/QĐ-UBND, 31/2024/QH15, 1234/UBND-VP
DOCUMENT_NUMBER = re.compile(
    r"(?<![\w/.,])(\d{1,5})(?:/(\d{4}))?/(" + _CODE + ")" + NO_LETTER_AFTER
)


def read_code(code: str) -> str:
    """NĐ-CP → "nghị định Chính phủ", QH15 → "Quốc hội khóa mười lăm"."""
    if code.startswith("QH"):
        return f"Quốc hội khóa {read_number(int(code[2:]))}"
    parts = code.split("-")
    spoken = [DOCUMENT_TYPES.get(parts[0]) or ISSUERS[parts[0]]]
    spoken += [ISSUERS.get(p) or DOCUMENT_TYPES[p] for p in parts[1:]]
    return " ".join(spoken)


def document_code(match: re.Match[str]) -> str:
    return read_code(match.group(1))


def document_number(match: re.Match[str]) -> str:
    number, year, code = match.group(1), match.group(2), match.group(3)
    words = [] if word_before(match) == "số" else ["số"]
    words.append(read_number(int(number)))  # "08/2024/TT-BTTTT": số tám
    if year:
        words += ["năm", read_number(int(year))]
    words.append(read_code(code))
    return " ".join(words)


ABBREVIATION = re.compile(
    NO_LETTER_BEFORE + "(" + _alternatives(ABBREVIATIONS) + ")" + NO_LETTER_AFTER
)


def abbreviation(match: re.Match[str]) -> str:
    return ABBREVIATIONS[match.group(1)]
