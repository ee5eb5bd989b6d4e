"""``ct-infer review``: a local web page to check and correct labels (the ``review`` extra).

- :mod:`.items`: the queues of crops (mislabel candidates, a label's crops by prediction,
  low-confidence detections);
- :mod:`.store`: decisions saved as made into the known-mislabeled lists and corrected
  MD JSON;
- :mod:`.session`: from a run folder or files to queues, picture folders and outputs;
- :mod:`.app`: the Starlette app (token, Host and Origin checks, safe file serving);
- :mod:`.server`: uvicorn on a loopback socket;
- ``static/``: the page, plain HTML, CSS and JavaScript (no build step).
"""
