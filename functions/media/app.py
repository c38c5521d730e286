"""Lambda entry point of the media function (S3 ObjectCreated on the media bucket's
`uploads/`): each upload becomes its variants, or is refused; see newsfeed.media.processing.
Pillow comes from this function's own requirements.txt, not the shared layer."""

import os

from feed_lambda.handlers import upload_handler
from feed_lambda.observability import observability
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
obs = observability("media")
services = lazy_services(settings, obs.telemetry)
handler = upload_handler(lambda key: services().media_processing().process_upload(key), obs)
