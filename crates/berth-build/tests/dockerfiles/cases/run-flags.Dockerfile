FROM golang:1.22 AS deps
RUN go mod download
FROM golang:1.22
ARG CACHE=/root/.cache/go-build
RUN --mount=type=cache,target=$CACHE,id=gobuild,sharing=locked,mode=0755,uid=0,gid=0 \
    --mount=type=bind,from=deps,source=/go/pkg,target=/go/pkg,rw \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=secret,id=netrc,target=/root/.netrc,required=true \
    --mount=type=secret,id=token,env=TOKEN \
    --mount=type=ssh \
    --network=none --security=sandbox \
    go build ./...
RUN --network=host --device=vendor.com/gpu=all true
# expect: stages=0,1
# expect: run[0]=["/bin/sh","-c","go build ./..."]
