"""System check: the configured instrument loads, with English and French in parity.

(That real studies show real contacts is checked by the studies app, ``studies/checks.py``.)"""

from django.core.checks import Error, register

from .definition import InstrumentError, get_instrument


@register()
def instrument_is_valid(app_configs, **kwargs):  # noqa: ARG001 - Django's check signature
    try:
        get_instrument()
    except (InstrumentError, OSError) as error:
        return [Error(str(error), id="instrument.E001")]
    return []
