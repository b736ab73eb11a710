from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review: evidence samples, the review queue, field accuracy, labelled export"
