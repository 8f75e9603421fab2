# syntax=docker/dockerfile:1
# check=skip=all
FROM --platform=$BUILDPLATFORM busybox:1.36 AS base
MAINTAINER someone <someone@example.com>
LABEL org.opencontainers.image.title="demo app" version=1.0
ENV APP_HOME=/srv/app PORT=8080
ENV LEGACY value with spaces
ARG VERSION=1.2.3
WORKDIR $APP_HOME
USER 1000:1000
EXPOSE $PORT 53/udp 9000-9001
VOLUME ["/data", "/logs"]
VOLUME /cache
STOPSIGNAL SIGQUIT
SHELL ["/bin/sh", "-eu", "-c"]
RUN echo "building $VERSION"
RUN ["/bin/echo", "exec", "form"]
CMD ["serve", "--port", "8080"]
ENTRYPOINT ["/entry"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --start-interval=1s --retries=4 CMD wget -q localhost:8080 || exit 1
ONBUILD COPY . /src
ONBUILD RUN make -C /src
COPY --chown=1000:1000 --chmod=0644 --link README.md ./
ADD --chown=app --chmod=u+x,go-w --link --unpack=false --exclude=*.tmp vendor.tar.gz /opt/
# expect: config.WorkingDir="/srv/app"
# expect: config.User="1000:1000"
# expect: config.ExposedPorts={"53/udp":{},"8080/tcp":{},"9000/tcp":{},"9001/tcp":{}}
# expect: config.Volumes={"/cache":{},"/data":{},"/logs":{}}
# expect: config.StopSignal="SIGQUIT"
# expect: config.Shell=["/bin/sh","-eu","-c"]
# expect: config.Cmd=["serve","--port","8080"]
# expect: config.Entrypoint=["/entry"]
# expect: config.Labels={"org.opencontainers.image.title":"demo app","version":"1.0"}
# expect: config.Healthcheck={"Test":["CMD-SHELL","wget -q localhost:8080 || exit 1"],"Interval":30000000000,"Timeout":5000000000,"StartPeriod":10000000000,"StartInterval":1000000000,"Retries":4}
# expect: config.OnBuild=["COPY . /src","RUN make -C /src"]
# expect: config.Env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","APP_HOME=/srv/app","PORT=8080","LEGACY=value with spaces"]
# expect: run[0]=["/bin/sh","-eu","-c","echo \"building $VERSION\""]
# expect: run[1]=["/bin/echo","exec","form"]
