"""Value types of layer arguments, and the one way a layer's validator reports a bad value.

Scalars are strict: a spec's `true` is not the number 1, a string "3" is not the number 3,
and `64 / 2` (a float) is not a filter count — write `64 // 2`. Lists stay lax so that the
parser may hand over tuples. "An int or a list" arguments (`kernel`, `stride`, …) hold the
value as written; layers turn them into one number per axis with `per_axis`.
"""

from typing import Annotated

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

from specc.errors import mismatch

PositiveInt = Annotated[int, Field(strict=True, gt=0)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
Int = Annotated[int, Field(strict=True)]
Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Flag = Annotated[bool, Field(strict=True)]
PositiveFloat = Annotated[float, Field(strict=True, gt=0)]
NonNegativeFloat = Annotated[float, Field(strict=True, ge=0)]
# A probability of dropping a unit: 1 would drop everything.
Rate = Annotated[float, Field(strict=True, ge=0, lt=1)]
UnitInterval = Annotated[float, Field(strict=True, ge=0, le=1)]


def one_of(description: str) -> WrapValidator:
    """Collapse a union's per-member errors into one saying what the argument takes.

    Without it Pydantic reports why the value fails every member of the union ("should be
    greater than 0", "should be a valid list", ...), which reads as three mistakes. The
    message has Pydantic's own form ("Input should be …"), which the binder turns into
    "invalid argument `kernel` of layer `conv2d` (expected …, got …)".
    """

    def validate(value: object, handler: ValidatorFunctionWrapHandler) -> object:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("argument_type", f"Input should be {description}") from None

    return WrapValidator(validate)


# `kernel=3` or `kernel=[3, 5]`: one number for every axis, or one per axis.
PerAxis = Annotated[
    PositiveInt | list[PositiveInt], one_of("a positive integer or a list of positive integers")
]


def invalid(what: str, expected: object, got: object) -> PydanticCustomError:
    """A validation error whose message is shown verbatim to the user, in the house style,
    after the layer and argument it concerns (`conv2d` argument `groups`: …).

    Its type is "value_error", as a ValueError's would be, so the binder shows it as a
    complete sentence; raising it rather than ValueError keeps Pydantic from prefixing the
    message with "Value error, ".
    """
    return PydanticCustomError("value_error", mismatch(what, expected, got))


def check_axes(value: int | list, rank: int, name: str, axes: tuple[str, ...]) -> None:
    """A list-valued per-axis argument must give exactly one entry per spatial axis."""
    if isinstance(value, list) and len(value) != rank:
        raise invalid(
            f"{name} must give one value per axis [{', '.join(axes)}]",
            f"an int or a list of {rank}",
            f"{len(value)} values {value}",
        )


def per_axis(value: int | list[int], rank: int) -> tuple[int, ...]:
    """`3` → (3, 3) for rank 2; a list (already checked to have `rank` entries) → a tuple."""
    return tuple(value) if isinstance(value, list) else (value,) * rank
