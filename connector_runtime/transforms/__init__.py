"""Event transforms: the path language (:mod:`.paths`), the field operations and their
compilation from ``spec.transforms`` (:mod:`.ops`), how one operation's paths run as trees
walked once per member (:mod:`.plan`), the patterns found inside text and the HMAC
(:mod:`.text`), the record a compiled list works on (:mod:`.record`), the runtime's chain
of every plugin's transform with its id/source guard (:mod:`.chain`) and the built-in
plugin that applies ``spec.transforms`` (:mod:`.builtin`)."""
