"""Forms of the review pages."""

from __future__ import annotations

from django import forms

from .services import MAX_REVIEW_REASON_CHARS


class ReviewForm(forms.Form):
    """A reviewer's verdict on one sample: the true class (one of the model's class names, which
    ``review.services.submit_review`` checks) and an optional reason."""

    true_class = forms.CharField(
        max_length=200, error_messages={"required": "Choose the true class."}
    )
    reason = forms.CharField(
        max_length=MAX_REVIEW_REASON_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
