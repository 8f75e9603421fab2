FROM busybox
CMD ['single', 'quotes']
ENTRYPOINT ["unterminated"
RUN [ "echo", "spaced" ]
# expect: config.Cmd=["/bin/sh","-c","['single', 'quotes']"]
# expect: config.Entrypoint=["/bin/sh","-c","[\"unterminated\""]
# expect: run[0]=["echo","spaced"]
