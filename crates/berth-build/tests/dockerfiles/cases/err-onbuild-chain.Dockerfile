FROM busybox
ONBUILD ONBUILD RUN x
# error: Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed
