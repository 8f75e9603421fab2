FROM busybox
ARG STAGE=x
COPY --from=$STAGE /a /b
# error: Dockerfile:3: variable expansion is not supported for --from
