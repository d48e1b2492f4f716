/* errno names for errno_name() in vmhost_net.c: E(NAME) per error, each only where the C
   library defines it. Aliases (EWOULDBLOCK, EDEADLOCK, ENOTSUP) are left out: their numbers are
   named EAGAIN, EDEADLK, EOPNOTSUPP, as the kernel and Node name them. */
#ifdef EPERM
E(EPERM)
#endif
#ifdef ENOENT
E(ENOENT)
#endif
#ifdef ESRCH
E(ESRCH)
#endif
#ifdef EINTR
E(EINTR)
#endif
#ifdef EIO
E(EIO)
#endif
#ifdef ENXIO
E(ENXIO)
#endif
#ifdef E2BIG
E(E2BIG)
#endif
#ifdef ENOEXEC
E(ENOEXEC)
#endif
#ifdef EBADF
E(EBADF)
#endif
#ifdef ECHILD
E(ECHILD)
#endif
#ifdef EAGAIN
E(EAGAIN)
#endif
#ifdef ENOMEM
E(ENOMEM)
#endif
#ifdef EACCES
E(EACCES)
#endif
#ifdef EFAULT
E(EFAULT)
#endif
#ifdef EBUSY
E(EBUSY)
#endif
#ifdef EEXIST
E(EEXIST)
#endif
#ifdef EXDEV
E(EXDEV)
#endif
#ifdef ENODEV
E(ENODEV)
#endif
#ifdef ENOTDIR
E(ENOTDIR)
#endif
#ifdef EISDIR
E(EISDIR)
#endif
#ifdef EINVAL
E(EINVAL)
#endif
#ifdef ENFILE
E(ENFILE)
#endif
#ifdef EMFILE
E(EMFILE)
#endif
#ifdef ENOTTY
E(ENOTTY)
#endif
#ifdef ETXTBSY
E(ETXTBSY)
#endif
#ifdef EFBIG
E(EFBIG)
#endif
#ifdef ENOSPC
E(ENOSPC)
#endif
#ifdef ESPIPE
E(ESPIPE)
#endif
#ifdef EROFS
E(EROFS)
#endif
#ifdef EMLINK
E(EMLINK)
#endif
#ifdef EPIPE
E(EPIPE)
#endif
#ifdef EDOM
E(EDOM)
#endif
#ifdef ERANGE
E(ERANGE)
#endif
#ifdef EDEADLK
E(EDEADLK)
#endif
#ifdef ENAMETOOLONG
E(ENAMETOOLONG)
#endif
#ifdef ENOLCK
E(ENOLCK)
#endif
#ifdef ENOSYS
E(ENOSYS)
#endif
#ifdef ENOTEMPTY
E(ENOTEMPTY)
#endif
#ifdef ELOOP
E(ELOOP)
#endif
#ifdef ENOMSG
E(ENOMSG)
#endif
#ifdef EIDRM
E(EIDRM)
#endif
#ifdef ENOSTR
E(ENOSTR)
#endif
#ifdef ENODATA
E(ENODATA)
#endif
#ifdef ETIME
E(ETIME)
#endif
#ifdef ENOSR
E(ENOSR)
#endif
#ifdef ENOLINK
E(ENOLINK)
#endif
#ifdef EPROTO
E(EPROTO)
#endif
#ifdef EMULTIHOP
E(EMULTIHOP)
#endif
#ifdef EBADMSG
E(EBADMSG)
#endif
#ifdef EOVERFLOW
E(EOVERFLOW)
#endif
#ifdef EILSEQ
E(EILSEQ)
#endif
#ifdef ENOTSOCK
E(ENOTSOCK)
#endif
#ifdef EDESTADDRREQ
E(EDESTADDRREQ)
#endif
#ifdef EMSGSIZE
E(EMSGSIZE)
#endif
#ifdef EPROTOTYPE
E(EPROTOTYPE)
#endif
#ifdef ENOPROTOOPT
E(ENOPROTOOPT)
#endif
#ifdef EPROTONOSUPPORT
E(EPROTONOSUPPORT)
#endif
#ifdef EOPNOTSUPP
E(EOPNOTSUPP)
#endif
#ifdef EAFNOSUPPORT
E(EAFNOSUPPORT)
#endif
#ifdef EADDRINUSE
E(EADDRINUSE)
#endif
#ifdef EADDRNOTAVAIL
E(EADDRNOTAVAIL)
#endif
#ifdef ENETDOWN
E(ENETDOWN)
#endif
#ifdef ENETUNREACH
E(ENETUNREACH)
#endif
#ifdef ENETRESET
E(ENETRESET)
#endif
#ifdef ECONNABORTED
E(ECONNABORTED)
#endif
#ifdef ECONNRESET
E(ECONNRESET)
#endif
#ifdef ENOBUFS
E(ENOBUFS)
#endif
#ifdef EISCONN
E(EISCONN)
#endif
#ifdef ENOTCONN
E(ENOTCONN)
#endif
#ifdef ETIMEDOUT
E(ETIMEDOUT)
#endif
#ifdef ECONNREFUSED
E(ECONNREFUSED)
#endif
#ifdef EHOSTUNREACH
E(EHOSTUNREACH)
#endif
#ifdef EALREADY
E(EALREADY)
#endif
#ifdef EINPROGRESS
E(EINPROGRESS)
#endif
#ifdef ESTALE
E(ESTALE)
#endif
#ifdef EDQUOT
E(EDQUOT)
#endif
#ifdef ECANCELED
E(ECANCELED)
#endif
