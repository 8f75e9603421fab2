# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
RUN dir c:\ `
    && echo done
COPY --chown=a `
     src c:\dst\
ENV P=c:\path` with` spaces
# expect: config.Env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","P=c:\\path with spaces"]
# expect: run[0]=["/bin/sh","-c","dir c:\\     && echo done"]
