ARG GLOBAL=g
FROM scratch
ARG GLOBAL
ARG FROMCLI=default
ENV FROMCLI=env-wins-after
ARG FROMCLI
ARG TARGETARCH
ARG TARGETPLATFORM
WORKDIR /$GLOBAL/$FROMCLI/$TARGETARCH
# build-arg: FROMCLI=cli
# build-arg: NEVERUSED=x
# build-arg: HTTP_PROXY=http://proxy:3128
# platform: linux/arm64
# expect: config.WorkingDir="/g/cli/arm64"
# expect: warning=One or more build-args [NEVERUSED] were not consumed
