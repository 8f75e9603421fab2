FROM busybox
ARG REQUIRED
WORKDIR ${REQUIRED:?must be set}
# error: Dockerfile:3: failed to process "${REQUIRED:?must be set}": REQUIRED: must be set
