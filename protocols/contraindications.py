"""The contraindications a program may list, by stable key, with the article's reasons.

Line numbers refer to the reference article (shared/reference/000_59a397fc260355a6.txt,
see DOMAIN.md "Contraindications"). Items from public device guidance carry no lines. The
screening (controller/screening.py) asks one yes/no question per item; programs name the
items that apply to them by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from protocols.tomlsource import FieldError

Effect = Literal["refuse", "no-heat", "today"]

ARTICLE: Final = "the article"
DEVICE_GUIDANCE: Final = "device guidance"


@dataclass(frozen=True)
class Contra:
    """One contraindication: a stable key, what it is, the question asked, and why."""

    key: str
    condition: str
    question: str
    reason: str
    lines: tuple[int, ...] = ()
    source: str = ARTICLE
    # refuse: a "yes" refuses every program that lists the key; no-heat: heat stays off for
    # every program; today: asked at every session start and refuses that day's sessions.
    effect: Effect = "refuse"

    def cite(self) -> str:
        """Return where this comes from: '(lines 155, 533)' or '(device guidance)'."""
        if not self.lines:
            return f"({self.source})"
        word = "line" if len(self.lines) == 1 else "lines"
        return f"({word} {', '.join(map(str, self.lines))})"

    def label(self) -> str:
        """Return the condition with its source, as programs and `cushion plan` show it."""
        return f"{self.condition} {self.cite()}"


def _c(key: str, condition: str, question: str, reason: str, *lines: int,
       effect: Effect = "refuse") -> Contra:
    return Contra(key, condition, question, reason, tuple(lines), effect=effect)


def _d(key: str, condition: str, question: str, reason: str,
       effect: Effect = "refuse") -> Contra:
    return Contra(key, condition, question, reason, (), DEVICE_GUIDANCE, effect)


# One item per question; the article's three lists (l. 152-163, 188-197, 527-540), the
# lumbar section (l. 350-361), the benign spinal tumour (l. 494-496) and acute pain (l. 290).
CONTRAINDICATIONS: Final[tuple[Contra, ...]] = (
    _c("acute_pain", "the acute period with pronounced pain",
       "Pronounced or acute pain right now?",
       'the article: in the acute period with pronounced pain "massage is prohibited"', 290,
       effect="today"),
    _c("tumour", "a tumour of any kind, including a benign tumour of any part of the spine",
       "Do you have a tumour of any kind (malignant or benign), or a benign tumour of the spine?",
       "the article lists tumours among the contraindications; with a benign tumour of the "
       "spine massage is prohibited and heating harms it too",
       161, 190, 357, 494, 496),
    _c("hypertension", "hypertension, high blood pressure",
       "Do you have high blood pressure (hypertension)?",
       "the article lists hypertension (the osteochondrosis lists name the third degree, "
       "lines 191 and 358)", 158, 191, 358),
    _c("bleeding", "bleeding, poor blood clotting or a blood disease",
       "Do you have bleeding, poor blood clotting or a blood disease?",
       "the article lists bleeding, poor clotting and blood diseases", 156, 160, 195, 359, 529),
    _c("infection", "an infectious or fungal disease, tuberculosis, an infection of the spine",
       "Do you have an infection or a fungal disease now, tuberculosis, or an infection of "
       "the spine?",
       "the article lists diseases caused by infections and fungi, and tuberculosis",
       155, 157, 196, 197, 361),
    _c("venereal", "a venereal disease in acute form",
       "Do you have a venereal disease in acute form?",
       "the article lists venereal diseases of acute form", 537),
    _c("purulent", "a purulent process anywhere in the body",
       "Do you have a purulent process (pus, an abscess) anywhere in the body?",
       "the article lists purulent processes, wherever they are", 154, 530),
    _c("osteomyelitis", "chronic osteomyelitis",
       "Do you have chronic osteomyelitis (a long-lasting bone infection)?",
       "the article lists the chronic form of osteomyelitis", 162),
    _c("inflammation", "acute inflammation or a high fever",
       "Do you have an acute inflammation or a fever?",
       "the article lists acute inflammation and inflammation with high fever", 159, 534),
    _c("skin", "a skin disease, rash, irritation, cracks or fungus on the skin",
       "Do you have a skin disease, rash, irritation, cracks or fungus on the skin of your back?",
       "the article lists skin diseases, rashes, irritations, fungus and cracks",
       155, 531, 532, 533),
    _c("moles", "many moles or birthmarks on the back",
       "Do you have many moles or birthmarks on your back?",
       "the article lists many birthmarks on the back", 192),
    _c("skin_sensitivity", "increased sensitivity of the skin",
       "Is the skin of your back unusually sensitive?",
       "the article lists an increased sensitivity of the skin", 193),
    _c("skin_allergy", "a strong allergy that shows on the skin",
       "Do you have a strong allergy that shows on the skin?",
       "the article lists a strong allergy that manifests itself on the skin", 538),
    _c("cardiovascular", "problems of the heart or blood vessels",
       "Do you have a problem with your heart or blood vessels?",
       "the article lists problems of the cardiovascular system", 194),
    _c("edema", "edema, swelling from fluid", "Do you have edema (swelling from fluid)?",
       "the article lists edema", 535),
    _c("injury", "an injury or trauma, a fracture",
       "Do you have an injury of the back or hips now (a bruise, a sprain, a fracture)?",
       "the article lists trauma and injuries", 160, 536),
    _c("psychiatric", "a psychiatric state with strong excitation or depression",
       "Are you in a state of strong agitation or depression?",
       "the article lists disorders of the psyche with strong excitation or depression "
       "of the nervous system", 163),
    _c("nausea", "vomiting or nausea", "Do you have nausea or vomiting?",
       "the article lists vomiting and nausea", 539),
    _c("abdominal_tenderness", "pain when the abdomen is pressed",
       "Does your abdomen hurt when pressed?",
       "the article lists painful sensations when the stomach is touched", 540),
    _c("hernia_vessels", "a complicated hernia or protrusion compressing spinal vessels",
       "Has a doctor found a complicated disc hernia or protrusion that compresses spinal "
       "vessels?",
       "the article: massage is not done with complicated intervertebral hernias and "
       "protrusions with compression of spinal vessels", 353),
    _c("vertebral_artery", "vertebral artery syndrome",
       "Has a doctor found vertebral artery syndrome?",
       "the article: massage is not done with a syndrome of the vertebral artery", 354),
    _c("spine_anomaly", "a severe congenital defect or anomaly of the spine",
       "Do you have a severe congenital defect or anomaly of the spine?",
       "the article: massage is not done with severe congenital anomalies of the spine", 355),
    _c("marfan", "a heavy form of Marfan syndrome", "Do you have Marfan syndrome?",
       "the article: massage is not done with heavy forms of Marfan syndrome", 356),
    _c("vasculitis", "systemic vasculitis", "Do you have systemic vasculitis?",
       "the article: massage is not done with systemic vasculitis", 360),
    _c("pregnancy", "pregnancy; in the article the last trimester, as relative",
       "Are you pregnant?",
       "the article names the last trimester a (relative) contraindication; device guidance "
       "advises against massage cushions in pregnancy without a doctor's advice", 352),
    _d("implant", "a pacemaker or other implant",
       "Do you have a pacemaker or another implant (a pump, a stimulator, metal in the back)?",
       "device guidance: massage devices are not advised with a pacemaker or other implants"),
    _d("thrombosis", "deep-vein thrombosis or anticoagulant medicine",
       "Do you have deep-vein thrombosis, or take medicine against blood clotting?",
       "device guidance: massage devices are not advised with thrombosis or anticoagulants"),
    _d("reduced_sensation", "reduced sensation of heat or touch: heat stays off",
       "Is your sense of heat or touch reduced (for example from diabetes or nerve damage)?",
       "device guidance: heat is not advised where sensation is reduced, as a burn may go "
       "unnoticed",
       effect="no-heat"),
    _d("recent_surgery", "recent surgery", "Have you had surgery in the last months?",
       "device guidance: massage devices are not advised soon after surgery"),
)

BY_KEY: Final[dict[str, Contra]] = {c.key: c for c in CONTRAINDICATIONS}
# Asked once and kept (the rest of the catalogue); acute pain is asked at each session start.
CHECKLIST: Final[tuple[Contra, ...]] = tuple(c for c in CONTRAINDICATIONS if c.effect != "today")
PAIN: Final = BY_KEY["acute_pain"]


class Contraindication(BaseModel):
    """One entry of a program's `contraindications`: a screening key, its text, or both.

    A plain string that is a known key means that item; any other string is free text, shown
    by `cushion plan` but not asked by the screening (the format before keys existed).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str | None = None
    text: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"key": data} if data in BY_KEY else {"text": data}
        elif not isinstance(data, dict | Contraindication):
            raise ValueError('a contraindication is a string (a key or free text) or a table '
                             'such as { key = "edema", text = "..." }')
        if isinstance(data, dict) and not str(data.get("text", "")).strip():
            item = BY_KEY.get(data.get("key"))  # type: ignore[arg-type]
            if item is not None:
                data = {**data, "text": item.label()}
        return data

    @model_validator(mode="after")
    def _known(self) -> Contraindication:
        if self.key is not None and self.key not in BY_KEY:
            raise FieldError(
                f"there is no contraindication key '{self.key}' (known keys: "
                f"{', '.join(BY_KEY)}); for a condition without a key, give only text", ("key",)
            )
        if not self.text.strip():
            raise FieldError("a contraindication needs a key or a text", ("text",))
        return self

    @property
    def item(self) -> Contra | None:
        """Return the screening item this entry names, or None for free text."""
        return BY_KEY.get(self.key) if self.key is not None else None
