"""What the survey tells the apps above it (letters, quality, exports), without importing them.

Receivers are connected in the listening app's ``AppConfig.ready``.
"""

from django.dispatch import Signal

#: Sent inside the withdrawal's transaction, with ``participant``: an app holding data of the
#: participant deletes it there (letters: the addressed letter).
participant_withdrawn = Signal()

#: Sent when a questionnaire page is rendered, with ``participant``, ``page``, ``language`` and
#: ``instrument``; each receiver returns a dict added to the page's template context, or None
#: (letters: the letter to the MP on the page flagged ``shows_letter``). A ``hidden_fields`` dict
#: in it is sent back with the form (``page_submitted``'s ``submitted``).
page_context = Signal()

#: Sent inside the transaction that stores a questionnaire page (the participant's row locked),
#: with ``participant``, ``page``, ``answers`` (as stored), ``submitted`` (the form as sent, hidden
#: fields included), ``language`` and ``instrument``: an app
#: that keeps what the page showed records it here, never while the page is served (a GET writes
#: nothing but the page-view record). Letters: the letter as addressed when its page is submitted.
page_submitted = Signal()
