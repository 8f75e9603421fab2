FROM golang:1.22 AS build
COPY . /src
RUN go build -o /out/app ./cmd/app
FROM build AS test
RUN go test ./...
FROM alpine AS docs
RUN echo docs > /docs
FROM scratch AS release
COPY --from=build /out/app /app
COPY --from=alpine:3.19 /etc/ssl/certs /etc/ssl/certs
FROM release
COPY --from=3 /app /app2
# target: release
# expect: stages=0,3
# expect: images=alpine:3.19
