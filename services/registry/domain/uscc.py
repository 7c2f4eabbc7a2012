"""统一社会信用代码 (GB 32100-2015) validation and generation. Pure functions, no I/O.

Both check characters are verified: position 17 (GB 11714 organisation-code check over positions 9–16)
and position 18 (GB/T 17710 mod 31 over positions 1–17). Unknown department/category codes and unknown
registration-authority division codes are *warnings*, never rejections (domain.md §0.8, §4).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(CHARSET)}
WEIGHTS_18 = [pow(3, i, 31) for i in range(17)]
WEIGHTS_ORG = [3, 7, 9, 10, 5, 8, 4, 2]

KNOWN_CATEGORIES: dict[str, dict[str, str]] = {
    "1": {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"},
    "5": {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"},
    "9": {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"},
    "Y": {"1": "其他"},
}


class USCCError(ValueError):
    """The code is invalid; ``position`` is 1-based (0 = the whole code, e.g. wrong length)."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


@dataclass(frozen=True)
class USCCResult:
    code: str
    department: str
    category: str
    division: str
    org_code: str
    warnings: list[str] = field(default_factory=list)


def _org_value(c: str) -> int:
    # GB 11714 alphabet: 0-9 → 0-9, A-Z → 10-35
    return int(c) if c.isdigit() else ord(c) - ord("A") + 10


def org_check_char(body8: str) -> str:
    """The GB 11714 check character for an 8-character organisation-code body."""
    total = sum(_org_value(c) * w for c, w in zip(body8, WEIGHTS_ORG, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc_check_char(first17: str) -> str:
    """The mod-31 check character (position 18) for the first 17 characters."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS_18, strict=True))
    return CHARSET[(-total) % 31]


def validate_uscc(raw: str, known_divisions: Container[str] | None = None) -> USCCResult:
    """Validate ``raw`` (surrounding spaces ignored, letters upper-cased). Raise ``USCCError`` if invalid."""
    code = raw.strip().upper()
    if len(code) != 18:
        raise USCCError(0, f"统一社会信用代码须为18位,实际{len(code)}位")
    for i, c in enumerate(code, start=1):
        if c not in CHARSET:
            raise USCCError(i, f"第{i}位字符“{c}”不在统一社会信用代码字符集内(不含 I、O、S、V、Z)")
    division = code[2:8]
    if not division.isdigit():
        raise USCCError(3, f"第3–8位登记管理机关行政区划码须为6位数字,实际为“{division}”")
    # positions 9–16 body: GB 11714 letters are A-Z; inside a USCC the charset above already applies
    expected17 = org_check_char(code[8:16])
    if code[16] != expected17:
        raise USCCError(17, f"第17位组织机构代码校验码错误:应为“{expected17}”,实际为“{code[16]}”")
    expected18 = uscc_check_char(code[:17])
    if code[17] != expected18:
        raise USCCError(18, f"第18位校验码错误:应为“{expected18}”,实际为“{code[17]}”")
    warnings: list[str] = []
    dept, cat = code[0], code[1]
    if dept not in KNOWN_CATEGORIES:
        warnings.append(f"第1位登记管理部门代码“{dept}”不在常用代码表(1、5、9、Y)中")
    elif cat not in KNOWN_CATEGORIES[dept]:
        warnings.append(f"第2位机构类别代码“{cat}”不是登记管理部门“{dept}”的已知类别")
    if known_divisions is not None and division not in known_divisions:
        warnings.append(f"第3–8位登记管理机关行政区划码“{division}”不在区划表(含已撤销代码)中")
    return USCCResult(code, dept, cat, division, code[8:17], warnings)


def make_uscc(division: str, body8: str, department: str = "9", category: str = "1") -> str:
    """Build a valid USCC from its parts (both check characters computed). For demo data and tests."""
    if len(division) != 6 or len(body8) != 8:
        raise ValueError("division must be 6 and body 8 characters")
    first16 = department + category + division + body8
    first17 = first16 + org_check_char(body8)
    return first17 + uscc_check_char(first17)
